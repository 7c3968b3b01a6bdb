// SPDX-License-Identifier: Apache-2.0
//
// AnchorRegistry: where anchorline engines anchor the hashes of their signed batch headers on a consortium chain.
//
// What it holds: for every allowed submitter (one per consortium member's engine), the header hash it anchored for
// each batch number. Only hashes are stored; no patient data ever reaches the chain. A header commits to its batch's
// Merkle root and to the previous header, so anchoring one header also fixes every earlier batch of that engine.
//
// Rules:
// - The owner (the consortium operator) manages the allow-list of submitter addresses and can hand ownership on.
// - A submitter's batch numbers only increase: an anchored batch can never be rewritten, and an engine that was
//   offline may skip ahead and anchor only its newest batch (the header chain covers the ones in between).
// - Records are keyed by submitter, so one member can never write into, or block, another member's log.
// - A submitter removed from the allow-list keeps its past records and cannot add new ones.
pragma solidity ^0.8.24;

contract AnchorRegistry {
    /// The consortium operator: manages the allow-list.
    address public owner;

    /// Addresses allowed to anchor (the consortium's members).
    mapping(address submitter => bool allowed) public isSubmitter;

    /// The header hash each submitter anchored for each batch number (zero if none).
    mapping(address submitter => mapping(uint256 batchNumber => bytes32 headerHash)) public headerHashOf;

    /// The highest batch number each submitter has anchored (zero before the first).
    mapping(address submitter => uint256 batchNumber) public latestBatchOf;

    event Anchored(address indexed submitter, uint256 indexed batchNumber, bytes32 headerHash);
    event SubmitterSet(address indexed submitter, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error NotSubmitter(address caller);
    error BatchNotAfterLatest(uint256 batchNumber, uint256 latestBatchNumber);
    error ZeroHeaderHash();
    error ZeroAddress();

    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    /// Records `headerHash` as the caller's header for `batchNumber`, which must be above every batch it anchored.
    function anchor(uint256 batchNumber, bytes32 headerHash) external {
        if (!isSubmitter[msg.sender]) revert NotSubmitter(msg.sender);
        if (headerHash == bytes32(0)) revert ZeroHeaderHash();
        uint256 latest = latestBatchOf[msg.sender];
        if (batchNumber <= latest) revert BatchNotAfterLatest(batchNumber, latest);
        latestBatchOf[msg.sender] = batchNumber;
        headerHashOf[msg.sender][batchNumber] = headerHash;
        emit Anchored(msg.sender, batchNumber, headerHash);
    }

    function setSubmitter(address submitter, bool allowed) external onlyOwner {
        if (submitter == address(0)) revert ZeroAddress();
        isSubmitter[submitter] = allowed;
        emit SubmitterSet(submitter, allowed);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }
}
