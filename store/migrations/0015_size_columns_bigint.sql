-- 0015_size_columns_bigint: sizes of received messages in bigint.
--
-- inbox_message.raw_size is the size of the whole message as received, which for a refused oversized MLLP frame or
-- STOW-RS part is the size of everything the sender streamed (only a prefix is kept in raw). An integer column held at
-- most 2 GiB - 1: the row of a larger refused frame failed its insert, and with it the group commit of every other
-- message in the same batch. bigint holds any size a sender can stream. It is the only size or length column in the
-- schema (attempts and mapping_warnings are counts); new ones are to be bigint from the start.
--
-- Changing the type rewrites inbox_message under an exclusive lock: on a large inbox, apply it in a quiet hour.
ALTER TABLE inbox_message ALTER COLUMN raw_size TYPE bigint;
