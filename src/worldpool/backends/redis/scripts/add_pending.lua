-- add_pending: queue a task for routing, ordered by priority then age (its first-put order:
-- a re-queued task keeps its age). Idempotent: a task already queued keeps its place.
--
-- KEYS[1] pending  zset    task id -> (100 - priority) * 1e12 + age (lowest first)
-- KEYS[2] tasks    zset    task ids by first-put order (the age)
-- KEYS[3] order    string  counter: the age of a task the index does not know
-- ARGV[1] task id, ARGV[2] priority (-100..100)
-- Returns 1 if added, 0 if it was already queued.
--@include tasks
local age = redis.call('ZSCORE', KEYS[2], ARGV[1]) or redis.call('INCR', KEYS[3])
return queue_pending(KEYS[1], ARGV[1], ARGV[2], age)
