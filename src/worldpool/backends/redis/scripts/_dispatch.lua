-- _dispatch.lua: the writes of one dispatch (dispatch.lua, and create_task.lua for a task
-- routed at submit), written once.
--@include slots
--@include tasks

-- The writes of one dispatch, once the compare and the slot check passed: store the routed
-- record (its JSON and version; the fenced copy in k_fence: attempt, worker, not
-- terminal), index its
-- deadline ('' = none), take the slot and send the envelope, take the task out of the
-- pending queue and log the TASK_DISPATCHED event (capped at cap). k_* are keys. `created`:
-- the task was created in this same step, so it was never queued nor had a deadline
-- indexed (nothing to take out). Returns the delivery id.
local function dispatch_task(k_task, k_fence, k_deadlines, k_slots, k_queue, k_pending,
    k_events, task_id, record, version, deadline, attempt, worker_id, envelope, event, cap,
    created)
  redis.call('HSET', k_task, 'data', record, 'version', version)
  redis.call('HSET', k_fence, 'attempt', attempt, 'worker', worker_id, 'terminal', '0')
  if not (created and deadline == '') then
    index_deadline(k_deadlines, task_id, deadline)
  end
  local id = send(k_slots, k_queue, task_id, envelope)
  if not created then
    redis.call('ZREM', k_pending, task_id)
  end
  append_event(k_events, cap, event)
  return id
end
