-- _fencing.lua: a worker's word about a task counts only while the task's record names that
-- worker and attempt and is not terminal. A task hash t:{task} keeps the fenced copy in
-- the fields attempt, worker and terminal ('1' / '0'), written with every record.

-- Whether the record at task_key names worker_id and attempt (a decimal string) and is
-- not terminal.
local function owns(task_key, worker_id, attempt)
  local f = redis.call('HMGET', task_key, 'attempt', 'worker', 'terminal')
  return f[1] == attempt and f[2] == worker_id and f[3] ~= '1'
end
