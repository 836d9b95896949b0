-- Revision 0005, before sql/0160 creates the partitioned metric store: the unpartitioned table steps aside (its
-- rows move into the partitions in 0005_b_metric_sample_partitioned_after.sql, in the same transaction).
-- squawk-ignore renaming-table -- internal table, no client may read it (every read and write goes through functions)
alter table chat_v11.metric_sample rename to metric_sample_unpartitioned;
-- squawk-ignore renaming-object -- its index, freed for the partitioned table's primary key
alter index chat_v11.metric_sample_pkey rename to metric_sample_unpartitioned_pkey;
