-- _slots.lua: the slot check and taking a slot. A worker (w:{worker}: status, max) can take a
-- slot for a task when it is online and its slots:{worker} set holds fewer than max task
-- ids; a task that holds a slot on it already takes no second one.

-- '' if the worker can take a slot for task_id now, else why not (the memory backend's
-- words, see backends/memory_rules.py, slot_refusal).
local function slot_refusal(worker_key, slots_key, task_id)
  local w = redis.call('HMGET', worker_key, 'status', 'max')
  if not w[1] then
    return 'no such worker is registered'
  end
  if w[1] ~= 'online' then
    return 'the worker is ' .. w[1]
  end
  -- SCARD first: a worker with room answers with one call.
  if redis.call('SCARD', slots_key) >= tonumber(w[2])
      and redis.call('SISMEMBER', slots_key, task_id) == 0 then
    return 'all ' .. w[2] .. ' slots are taken'
  end
  return ''
end

-- Take the slot (slot_refusal said yes) and append the envelope to the worker's stream
-- q:{worker} (fields d = envelope, t = task id). Returns the delivery id.
local function send(slots_key, queue_key, task_id, envelope)
  redis.call('SADD', slots_key, task_id)
  return redis.call('XADD', queue_key, '*', 'd', envelope, 't', task_id)
end
