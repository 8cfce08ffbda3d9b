"""The gateway's rate limits: per client address and per signed-in user, in Envoy.

Every method with a JSON route falls in one class (read from its google.api.http rule, so a new
route is limited without being listed): sign-in, sign-up, upload, write (any other verb than GET)
or read. Envoy routes each method on its gRPC path, after the transcoder, so a native gRPC call
and its JSON form share one bucket. Each class names the buckets it takes a token from (the
settings of services.common.config.RATE_LIMITS, PICTOR_RATE_LIMIT_<NAME>=COUNT/SECONDS):

  sign-in   sign_in_address (per client address) and sign_in_account (per account named)
  sign-up   sign_up_address
  upload    uploads_user (per signed-in user) and writes_user
  write     writes_user
  read      reads_address

Buckets are Envoy local_ratelimit descriptors with an empty (dynamic) value: one token bucket
per address, user or account seen, kept in an LRU of PICTOR_RATE_LIMIT_MAX_KEYS entries. The
user is the `sub` of the access token jwt_authn verified (its dynamic metadata, so a header
cannot forge it); the account of a sign-in is read from the request by a small Lua filter
(the gRPC message's field 1, `username`, lower-cased). A request without a signed-in user
takes no per-user token (the service answers it 401 anyway). The listener's global bucket
(PICTOR_GATEWAY_RATE_LIMIT per second) stays as a ceiling for everything.

Over a limit, Envoy answers 429 with a JSON error (reason RATE_LIMITED) and Retry-After: the
seconds until the bucket refills (RETRY_AFTER_LUA, on every route); a gRPC caller gets
RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

from services.common.config import Limit

SIGN_IN, SIGN_UP, UPLOAD, WRITE, READ = "sign_in", "sign_up", "upload", "write", "read"
# Methods whose class is not read from their verb alone.
SPECIAL = {
    "/pictor.accounts.v1.AccountsService/CreateSession": SIGN_IN,
    "/pictor.accounts.v1.AccountsService/CreateAccount": SIGN_UP,
    "/pictor.media.v1.MediaService/UploadMedia": UPLOAD,
    "/pictor.media.v1.MediaService/CreateUpload": UPLOAD,
}
# class -> the buckets (settings names) it takes a token from.
BUCKETS = {
    SIGN_IN: ("sign_in_address", "sign_in_account"),
    SIGN_UP: ("sign_up_address",),
    UPLOAD: ("uploads_user", "writes_user"),
    WRITE: ("writes_user",),
    READ: ("reads_address",),
}
ADDRESS, USER, ACCOUNT = "remote_address", "user", "account"
JWT_METADATA = ("envoy.filters.http.jwt_authn", "jwt_payload")
SIGN_IN_METADATA = "pictor.sign_in"
# Its own name: per-route config is keyed by filter name, and the status filter is envoy.filters.http.lua.
LUA_FILTER = "pictor.rate_limits.lua"
MAX_KEYS_DEFAULT = 100_000


def method_class(grpc_path: str, verb: str) -> str:
    return SPECIAL.get(grpc_path) or (READ if verb == "get" else WRITE)


def _key(bucket: str) -> str:
    return {"address": ADDRESS, "user": USER, "account": ACCOUNT}[bucket.rsplit("_", 1)[1]]


def _key_action(key: str) -> dict:
    if key == ADDRESS:
        return {"remote_address": {}}
    namespace, path = ((JWT_METADATA[0], [JWT_METADATA[1], "sub"]) if key == USER
                       else (SIGN_IN_METADATA, [ACCOUNT]))
    return {"metadata": {"descriptor_key": key, "source": "DYNAMIC",
                         "metadata_key": {"key": namespace, "path": [{"key": p} for p in path]}}}


def route_rate_limits(cls: str) -> list[dict]:
    """The route's actions: one descriptor per bucket, (bucket name, the address/user/account).
    A descriptor whose value is missing (no signed-in user) is skipped."""
    return [{"actions": [{"generic_key": {"descriptor_key": "bucket", "descriptor_value": bucket}},
                         _key_action(_key(bucket))]}
            for bucket in BUCKETS[cls]]


def descriptors(limits: dict[str, Limit]) -> list[dict]:
    """The filter's buckets: one per (bucket, value) seen, each of its configured size."""
    return [{"entries": [{"key": "bucket", "value": bucket}, {"key": _key(bucket), "value": ""}],
             "token_bucket": {"max_tokens": limit.count, "tokens_per_fill": limit.count,
                              "fill_interval": f"{limit.seconds}s"}}
            for bucket, limit in limits.items()]


# Every response: a 429 of the rate limit filter gets Retry-After, the seconds until its bucket
# refills (the filter's x-ratelimit-reset, which it adds after the local reply mapper has run).
RETRY_AFTER_LUA = """
function envoy_on_response(handle)
  local headers = handle:headers()
  if headers:get(":status") == "429" then
    local reset = headers:get("x-ratelimit-reset")
    if reset ~= nil then headers:replace("retry-after", reset) end
  end
end
"""

# Reads the account a sign-in names from the gRPC request (after the transcoder, REST and
# native calls alike): field 1 (username or email) of the message after the 5-byte frame header.
SIGN_IN_LUA = """
local function varint(s, i)
  local value, shift = 0, 0
  while i <= #s do
    local b = s:byte(i)
    value = value + (b % 128) * 2 ^ shift
    i = i + 1
    if b < 128 then return value, i end
    shift = shift + 7
  end
  return nil, i
end

function envoy_on_request(handle)
  local body = handle:body()
  if body == nil then return end
  local s = body:getBytes(0, body:length())
  local i = 6
  while i <= #s do
    local tag, value
    tag, i = varint(s, i)
    if tag == nil then return end
    local field, wire = math.floor(tag / 8), tag % 8
    if wire == 0 then
      value, i = varint(s, i)
      if value == nil then return end
    elseif wire == 2 then
      local n
      n, i = varint(s, i)
      if n == nil then return end
      if field == 1 then
        handle:streamInfo():dynamicMetadata():set("NAMESPACE", "KEY", string.lower(s:sub(i, i + n - 1)))
        return
      end
      i = i + n
    elseif wire == 1 then i = i + 8
    elseif wire == 5 then i = i + 4
    else return end
  end
end
""".replace("NAMESPACE", SIGN_IN_METADATA).replace("KEY", ACCOUNT) + RETRY_AFTER_LUA
