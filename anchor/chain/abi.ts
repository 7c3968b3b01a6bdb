/**
 * AnchorRegistry's interface, in human-readable form so viem infers the types. A test checks it against the ABI
 * that solc emits for AnchorRegistry.sol.
 */
import { parseAbi } from 'viem';

export const anchorRegistryAbi = parseAbi([
  'constructor()',
  'function owner() view returns (address)',
  'function isSubmitter(address submitter) view returns (bool allowed)',
  'function headerHashOf(address submitter, uint256 batchNumber) view returns (bytes32 headerHash)',
  'function latestBatchOf(address submitter) view returns (uint256 batchNumber)',
  'function anchor(uint256 batchNumber, bytes32 headerHash)',
  'function setSubmitter(address submitter, bool allowed)',
  'function transferOwnership(address newOwner)',
  'event Anchored(address indexed submitter, uint256 indexed batchNumber, bytes32 headerHash)',
  'event SubmitterSet(address indexed submitter, bool allowed)',
  'event OwnershipTransferred(address indexed previousOwner, address indexed newOwner)',
  'error NotOwner(address caller)',
  'error NotSubmitter(address caller)',
  'error BatchNotAfterLatest(uint256 batchNumber, uint256 latestBatchNumber)',
  'error ZeroHeaderHash()',
  'error ZeroAddress()',
]);
