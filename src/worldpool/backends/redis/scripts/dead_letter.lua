-- dead_letter: append a refused envelope to the capped dead-letter stream, stamped with
-- server time (microseconds; the stream id alone only has milliseconds).
--
-- KEYS[1] dead or dead:{worker} (a worker's own letters)  stream  fields w (worker),
--         c (code), r (reason), d (data), at
-- ARGV[1] worker id, ARGV[2] code, ARGV[3] reason, ARGV[4] data, ARGV[5] cap (exact MAXLEN)
-- Returns the stream id.
--@include clock
return redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], '*', 'w', ARGV[1], 'c', ARGV[2],
  'r', ARGV[3], 'd', ARGV[4], 'at', server_now())
