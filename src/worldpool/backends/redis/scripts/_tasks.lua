-- _tasks.lua: the writes that go with a task record: its timeout deadline, its place in the
-- pending queue, the event log.

-- Index the task's next timeout deadline in the sorted set `deadlines` ('' = none can fire:
-- take it out).
local function index_deadline(deadlines_key, task_id, deadline)
  if deadline == '' then
    redis.call('ZREM', deadlines_key, task_id)
  else
    redis.call('ZADD', deadlines_key, deadline, task_id)
  end
end

-- Append one event JSON to the capped event log (exact MAXLEN cap); the stream id.
local function append_event(events_key, cap, event)
  return redis.call('XADD', events_key, 'MAXLEN', cap, '*', 'e', event)
end

-- Queue a task for routing, ordered by priority (-100..100) then age: the sorted set
-- `pending` scores (100 - priority) * 1e12 + age (lowest first), age the task's first-put
-- order (its score in the `tasks` index), so a failed-over or retried task queues ahead of
-- everything submitted after it. A task already queued keeps its place. Returns 1 if added,
-- 0 if it was queued already.
local function queue_pending(pending_key, task_id, priority, age)
  if redis.call('ZSCORE', pending_key, task_id) then
    return 0
  end
  local score = (100 - tonumber(priority)) * 1000000000000 + tonumber(age)
  redis.call('ZADD', pending_key, string.format('%d', score), task_id)
  return 1
end
