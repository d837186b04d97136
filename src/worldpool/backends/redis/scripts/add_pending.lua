-- add_pending: queue a task for routing, ordered by priority then first-queued. Idempotent:
-- a task already queued keeps its place.
--
-- KEYS[1] pending      zset  task id -> (100 - priority) * 1e12 + seq (lowest first)
-- KEYS[2] pending:seq  string counter
-- ARGV[1] task id, ARGV[2] priority (-100..100)
-- Returns 1 if added, 0 if it was already queued.
--@include tasks
return queue_pending(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
