-- _fencing.lua: a worker's word about a task counts only while the task's record names that
-- worker and attempt and is not terminal. The hash f:{task} keeps that fenced copy of the
-- record t:{task} in the fields attempt, worker and terminal ('1' / '0'), written with
-- every record (a key of its own: a worker's Redis user may read it, never the record).

-- Whether the fencing copy at fence_key names worker_id and attempt (a decimal string)
-- and is not terminal.
local function owns(fence_key, worker_id, attempt)
  local f = redis.call('HMGET', fence_key, 'attempt', 'worker', 'terminal')
  return f[1] == attempt and f[2] == worker_id and f[3] ~= '1'
end
