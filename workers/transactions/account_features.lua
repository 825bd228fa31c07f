-- Per-account features of one transaction, computed at the transaction's own point in time and then
-- recorded, atomically and once per transaction id (Redis runs a script as one step: no other client's
-- command interleaves, so several workers scoring one account can neither lose a count nor let a burst
-- through between a check and an add).
--
-- KEYS[1] state hash     windowed counters + account's first/last timestamps     (TTL: state)
-- KEYS[2] recent zset    exact recent events, score = timestamp in ms            (TTL: state)
-- KEYS[3] seen hash      first/last time of each merchant, MCC and country,      (TTL: seen)
--                        and how many of each kind (fields '#m', '#c', '#k')
-- KEYS[4] snapshot       the features returned the first time, per tx id         (TTL: snapshot)
--
-- ARGV: 1 ts_ms, 2 event id (digest of the tx id), 3 amount_cents, 4 merchant digest, 5 mcc, 6 country ('' = absent),
--       7 limits, comma-separated: state_ttl_ms, seen_ttl_ms, snapshot_ttl_ms, recent_cap, recent_keep_ms,
--         recent_min_keep, seen cap merchants, seen cap MCCs, seen cap countries
--
-- Windows (all exclude the transaction itself and every event with a later timestamp; events at the same
-- millisecond are ordered by event id, as the sorted set orders equal scores by member):
--   10 min   exact, from the recent sorted set (so at most recent_cap events: it saturates in a burst);
--   1 h      eleven whole 5-minute buckets before this one + this bucket's earlier events (its counter
--            less the later events of the recent set);
--   24 h     23 whole hour buckets + this hour's earlier 5-minute buckets + this bucket's earlier events;
--   7 d      6 whole day buckets + today's earlier hours + this hour's earlier 5-minute buckets + ...
-- so a window starts on a bucket boundary (the 1 h window spans 55 to 60 minutes). Buckets are rings of
-- fields "<level><slot>" = "<bucket index>:<count>:<sum of cents>"; a slot holding another index reads 0.
--
-- Returns {replayed (0|1), snapshot JSON array}; see FEATURE_NAMES in features.py for the order.

local state, recent, seen, snapshot_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local stored = redis.call('GET', snapshot_key)
if stored then
  return {1, stored}
end

local ts = tonumber(ARGV[1])
local event_id = ARGV[2]
local cents = tonumber(ARGV[3])
local merchant, mcc, country = ARGV[4], ARGV[5], ARGV[6]
local limits = {}
for number in string.gmatch(ARGV[7], '%d+') do
  limits[#limits + 1] = tonumber(number)
end
local state_ttl, seen_ttl, snapshot_ttl = limits[1], limits[2], limits[3]
local recent_cap, recent_keep, recent_min_keep = limits[4], limits[5], limits[6]
local seen_caps = {m = limits[7], c = limits[8], k = limits[9]}

-- Levels: bucket width in ms, ring size, field prefix. Rings hold a little more than each window
-- needs, so that an arrival a few minutes out of order still finds its buckets.
local FIVE = {width = 300000, ring = 14, prefix = 'f'}
local HOUR = {width = 3600000, ring = 25, prefix = 'h'}
local DAY = {width = 86400000, ring = 8, prefix = 'd'}
local LEVELS = {FIVE, HOUR, DAY}
local five, hour, day = math.floor(ts / FIVE.width), math.floor(ts / HOUR.width), math.floor(ts / DAY.width)

-- The whole state hash in one read: {field -> {index, count, sum}}.
local slots, first, last = {}, nil, nil
local raw_state = redis.call('HGETALL', state)
for i = 1, #raw_state, 2 do
  local field, value = raw_state[i], raw_state[i + 1]
  if field == 'first' then
    first = tonumber(value)
  elseif field == 'last' then
    last = tonumber(value)
  else
    local index, count, sum = string.match(value, '^(%d+):(%d+):(-?%d+)$')
    slots[field] = {tonumber(index), tonumber(count), tonumber(sum)}
  end
end

-- Count and sum of a level's buckets from..to (inclusive); a slot now holding another bucket reads 0.
local function buckets(level, from, to)
  local count, sum = 0, 0
  for index = from, to do
    local slot = slots[level.prefix .. (index % level.ring)]
    if slot and slot[1] == index then
      count, sum = count + slot[2], sum + slot[3]
    end
  end
  return count, sum
end

-- Recent events up to the end of this 5-minute bucket, oldest first (a member is
-- "<event id>\t<merchant digest>\t<cents>": unique, so same-time events are all kept).
local self_member = event_id .. '\t' .. merchant .. '\t' .. ARGV[3]
local window_start, bucket_start = ts - 600000, five * FIVE.width
local rows = redis.call('ZRANGEBYSCORE', recent, '-inf', '(' .. (bucket_start + FIVE.width), 'WITHSCORES')
local count_10m, sum_10m, distinct_10m, merchants_10m = 0, 0, 0, {}
local before_count, before_sum, after_count, after_sum = 0, 0, 0, 0  -- this bucket, around this transaction
local since_previous = -1
for i = 1, #rows, 2 do
  local member, score = rows[i], tonumber(rows[i + 1])
  local event_merchant, event_cents = string.match(member, '^[^\t]*\t([^\t]*)\t(-?%d+)$')
  event_cents = tonumber(event_cents)
  if score < ts or (score == ts and member < self_member) then
    since_previous = ts - score
    if score > window_start then
      count_10m, sum_10m = count_10m + 1, sum_10m + event_cents
      if event_merchant ~= '' and not merchants_10m[event_merchant] then
        merchants_10m[event_merchant] = true
        distinct_10m = distinct_10m + 1
      end
    end
    if score >= bucket_start then
      before_count, before_sum = before_count + 1, before_sum + event_cents
    end
  else
    after_count, after_sum = after_count + 1, after_sum + event_cents
  end
end

-- This bucket's events before this transaction: its counter less the later events (exact even when a
-- burst outgrows the recent set); from the recent set alone if the ring no longer holds this bucket.
local partial_count, partial_sum = before_count, before_sum
local current = slots[FIVE.prefix .. (five % FIVE.ring)]
if current and current[1] == five then
  partial_count, partial_sum = current[2] - after_count, current[3] - after_sum
end

local hour_fives_c, hour_fives_s = buckets(FIVE, hour * 12, five - 1)
local day_hours_c, day_hours_s = buckets(HOUR, day * 24, hour - 1)
local c, s = buckets(FIVE, five - 11, five - 1)
local count_1h, sum_1h = c + partial_count, s + partial_sum
c, s = buckets(HOUR, hour - 23, hour - 1)
local count_24h, sum_24h = c + hour_fives_c + partial_count, s + hour_fives_s + partial_sum
c, s = buckets(DAY, day - 6, day - 1)
local count_7d = c + day_hours_c + hour_fives_c + partial_count
local sum_7d = s + day_hours_s + hour_fives_s + partial_sum

local account_age = 0
if first and first < ts then
  account_age = ts - first
end

-- First time seen (point in time: no earlier timestamp recorded for it). Field: kind letter + value;
-- value "first_ms:last_ms"; '#<kind>' counts the entries of a kind.
local kinds, values = {'m', 'c', 'k'}, {merchant, mcc, country}
local seen_now = redis.call('HMGET', seen, 'm' .. merchant, 'c' .. mcc, 'k' .. country, '#m', '#c', '#k')
local is_new, seen_updates = {0, 0, 0}, {}
for i, kind in ipairs(kinds) do
  if values[i] ~= '' then
    local seen_first, seen_last = ts, ts
    local current = seen_now[i]
    if current then
      local f, l = string.match(current, '^(%d+):(%d+)$')
      f, l = tonumber(f), tonumber(l)
      if f >= ts then
        is_new[i] = 1
      end
      seen_first, seen_last = math.min(f, ts), math.max(l, ts)
    else
      is_new[i] = 1
      local count = (tonumber(seen_now[i + 3]) or 0) + 1
      if count > seen_caps[kind] then
        -- Bounded: past the cap, forget the entry of this kind seen least recently.
        count = count - 1
        local all = redis.call('HGETALL', seen)
        local oldest_field, oldest_last = nil, nil
        for j = 1, #all, 2 do
          if string.sub(all[j], 1, 1) == kind then
            local l = tonumber(string.match(all[j + 1], ':(%d+)$'))
            if oldest_last == nil or l < oldest_last then
              oldest_field, oldest_last = all[j], l
            end
          end
        end
        redis.call('HDEL', seen, oldest_field)
      end
      seen_updates[#seen_updates + 1] = '#' .. kind
      seen_updates[#seen_updates + 1] = count
    end
    seen_updates[#seen_updates + 1] = kind .. values[i]
    seen_updates[#seen_updates + 1] = string.format('%d:%d', seen_first, seen_last)
  end
end
if #seen_updates > 0 then
  redis.call('HSET', seen, unpack(seen_updates))
  redis.call('PEXPIRE', seen, seen_ttl)
end

-- Record this transaction in each level's bucket. A slot already holding a later bucket (an arrival
-- older than that ring) is left alone: coarser levels still count it.
local state_updates = {}
for _, level in ipairs(LEVELS) do
  local index = math.floor(ts / level.width)
  local field = level.prefix .. (index % level.ring)
  local slot = slots[field]
  if not slot or slot[1] < index then
    slot = {index, 0, 0}
  end
  if slot[1] == index then
    state_updates[#state_updates + 1] = field
    state_updates[#state_updates + 1] = string.format('%d:%d:%d', index, slot[2] + 1, slot[3] + cents)
  end
end
if not first or ts < first then
  state_updates[#state_updates + 1] = 'first'
  state_updates[#state_updates + 1] = string.format('%d', ts)
end
if not last or ts > last then
  last = ts
  state_updates[#state_updates + 1] = 'last'
  state_updates[#state_updates + 1] = string.format('%d', ts)
end
redis.call('HSET', state, unpack(state_updates))
redis.call('PEXPIRE', state, state_ttl)

-- Recent events: those of the last recent_keep ms before the latest, at least recent_min_keep, at most recent_cap.
redis.call('ZADD', recent, ts, self_member)
local size = redis.call('ZCARD', recent)
local stale = redis.call('ZCOUNT', recent, '-inf', '(' .. (last - recent_keep))
local removable = math.max(math.min(stale, size - recent_min_keep), size - recent_cap)
if removable > 0 then
  redis.call('ZREMRANGEBYRANK', recent, 0, removable - 1)
end
redis.call('PEXPIRE', recent, state_ttl)

local features = cjson.encode({
  count_10m, sum_10m, count_1h, sum_1h, count_24h, sum_24h, count_7d, sum_7d,
  since_previous, is_new[1], is_new[2], is_new[3], distinct_10m, account_age,
})
redis.call('SET', snapshot_key, features, 'PX', snapshot_ttl)
return {0, features}
