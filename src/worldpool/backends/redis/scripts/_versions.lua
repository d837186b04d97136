-- _versions.lua: compare-and-set on a record's version. A record hash (t:{task} or
-- wf:{workflow}) keeps its version in the field 'version'; a missing record has version 0.
-- A write that compares happens only if the stored version is the expected one, and
-- stores version + 1.

-- The stored version of the record at record_key (0 if there is none).
local function stored_version(record_key)
  return tonumber(redis.call('HGET', record_key, 'version') or '0')
end

-- Whether a write expecting version `expected` (a decimal string; '' = no compare) may
-- replace a record whose stored version is `current`.
local function version_matches(current, expected)
  return expected == '' or tonumber(expected) == current
end
