"""The Lua half of the script sandbox (script_lua.c + the readonly-table
patches of Redis's bundled Lua), as source text run once per interpreter.

Why so much of it is in Lua: stock Lua 5.1 (what lupa ships) has no
read-only tables, so every protected table is an empty *proxy* whose
metatable reads through to the real table and refuses writes; the base
functions that could see past a proxy (rawget, rawset, next, pairs,
getmetatable, setmetatable, table.insert, type) are replaced by versions
that know the proxies.  Scripts only ever hold proxies: the real tables, the
lupa globals (with ``python``, ``os``, ``io``...) and the Python callables'
attributes are unreachable.

Error positions.  Redis's library functions are C functions, and Lua 5.1
keeps the caller's frame for a C call even in tail position
(``return redis.call(...)``), while a *Lua* wrapper called in tail position
replaces its caller's frame and the position is lost.  So every API that
can raise is a Python callable (a C function to Lua), which raises a Python
exception; lupa turns it into an error value that every catch point (the
error handler, ``pcall``, ``xpcall``, ``coroutine.resume``) translates back
into the string or ``{err=...}`` table Redis would have raised.  Lua
wrappers below only raise for rare argument errors.

Chunk names: the set-up runs as ``=[ambry]``; frames from it are skipped by
the error handler, which itself is compiled as ``@err_handler_def`` with the
same line layout as Redis's (``err['source']`` on line 10), because an error
raised while handling an error is reported at that position.
"""

from __future__ import annotations

INTERNAL_CHUNK = b"=[ambry]"

# Redis's __redis__err__handler (eval.c scriptingInit), extended: errors
# raised by Python callables are translated first, and frames of the
# internal chunk are skipped (they stand for Redis's C functions).
ERR_HANDLER_DEF = rb"""local getinfo, translate, INTERNAL, type, tostring = ...
return function(err)
  if type(err) == 'userdata' then err = translate(err) end
  local lv = 2  local i = getinfo(2,'nSl')
  if i and i.what == 'C' then lv = 3  i = getinfo(3,'nSl') end
  while i and i.source == INTERNAL do lv = lv + 1  i = getinfo(lv,'nSl') end
  if type(err) ~= 'table' then
    err = {err='ERR ' .. tostring(err)}
  end if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end
"""

PRELUDE = rb"""
local mode, py = ...
local _G0 = _G
local type, next, rawget, rawset, rawequal = type, next, rawget, rawset, rawequal
local setmetatable, getmetatable, error, select = setmetatable, getmetatable, error, select
local tostring, tonumber, pcall, xpcall, unpack = tostring, tonumber, pcall, xpcall, unpack
local loadstring, setfenv, newproxy, collectgarbage = loadstring, setfenv, newproxy, collectgarbage
local sformat, ssub, sbyte, sfind, sgsub = string.format, string.sub, string.byte, string.find, string.gsub
local tconcat, tinsert = table.concat, table.insert
local huge = math.huge
local getinfo, sethook, dgetmetatable = debug.getinfo, debug.sethook, debug.getmetatable
local coresume = coroutine.resume
local INTERNAL = "=[ambry]"

-- Python callables exposed as functions: type() says "function" for them.
local callables = {}
local function ltype(v)
  local t = type(v)
  if t == "userdata" and callables[v] then return "function" end
  return t
end
local function tname(n, ...)  -- luaL_typename of argument n
  if select('#', ...) < n then return "no value" end
  return ltype((select(n, ...)))
end

-- luaL_where for the frame `level` levels above the caller of where().
local function where(level)
  local ar = getinfo(level + 1, "Sl")
  if ar and ar.currentline > 0 then return ar.short_src .. ":" .. ar.currentline .. ": " end
  return ""
end
-- luaL_argerror's text.  L is the level, relative to the caller of argmsg,
-- of the function the user called (its caller is at L + 1).
local function argmsg(L, narg, extramsg)
  local ar = getinfo(L + 1, "n")
  local name = ar and ar.name
  if ar and ar.namewhat == "method" then
    narg = narg - 1
    if narg == 0 then
      return where(L + 2) .. "calling '" .. tostring(name) .. "' on bad self (" .. extramsg .. ")"
    end
  end
  return where(L + 2) .. "bad argument #" .. narg .. " to '" .. (name or "?") .. "' (" .. extramsg .. ")"
end

-- Errors raised by Python callables arrive as userdata: back to what Redis raises.
local function translate(e)
  local kind, a, b = py.errval(e)
  if kind == 1 then return a end
  if kind == 2 then
    if b then return {err = a, ignore_error_stats_update = true} end
    return {err = a}
  end
  return e
end

-- -- read-only tables -------------------------------------------------------
local R, P            -- the real global table and its proxy (set below)
local real_of = {}     -- proxy -> real table
local fake_meta = {}   -- proxy -> what getmetatable() answers for it
local function ro_newindex(t, k, v) error("Attempt to modify a readonly table", 2) end
local function protect(t, fm)
  local p = {}
  real_of[p] = t
  fake_meta[p] = fm
  setmetatable(p, {__index = t, __newindex = ro_newindex, __metatable = false})
  return p
end
local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

-- luaProtectedTableError: the global table's __index.
local function protected_table_error(...)
  if select('#', ...) ~= 2 then error("Wrong number of arguments to luaProtectedTableError", 2) end
  local k = select(2, ...)
  local tk = type(k)
  if tk ~= "string" and tk ~= "number" then
    error("Second argument to luaProtectedTableError must be a string or number", 2)
  end
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end

-- -- base functions that know the proxies -------------------------------------
-- They are trampolines: a Python callable (a C function to Lua, so the
-- caller's frame survives even a tail call) runs these implementations,
-- which return true, results... or false, the error message.
local function i_rawget(...)
  local n = select('#', ...)
  local t, k = ...
  if type(t) ~= "table" or n < 1 then return false, argmsg(2, 1, "table expected, got " .. tname(1, ...)) end
  if n < 2 then return false, argmsg(2, 2, "value expected") end
  return true, rawget(real_of[t] or t, k)
end
local function nextv(ok, ...)
  if ok then return true, ... end
  return false, "invalid key to 'next'"
end
local function i_next(...)
  local n = select('#', ...)
  local t, k = ...
  if type(t) ~= "table" or n < 1 then return false, argmsg(2, 1, "table expected, got " .. tname(1, ...)) end
  return nextv(pcall(next, real_of[t] or t, k))
end
local l_next  -- the global next (a Python trampoline), for pairs() of proxies
local function i_pairs(...)
  local t = ...
  if type(t) ~= "table" or select('#', ...) < 1 then
    return false, argmsg(2, 1, "table expected, got " .. tname(1, ...))
  end
  if real_of[t] then return true, l_next, t, nil end
  return true, next, t, nil
end
local string_meta_proxy
local function i_getmetatable(...)
  if select('#', ...) == 0 then return false, argmsg(2, 1, "value expected") end
  local v = ...
  local t = type(v)
  if t == "table" then
    if real_of[v] then return true, fake_meta[v] end
  elseif t == "string" then
    return true, string_meta_proxy
  elseif t == "userdata" and callables[v] then
    return true, nil
  end
  return true, getmetatable(v)
end
local function i_protected_table_error(...)
  if select('#', ...) ~= 2 then return false, where(3) .. "Wrong number of arguments to luaProtectedTableError" end
  local k = select(2, ...)
  local tk = type(k)
  if tk ~= "string" and tk ~= "number" then
    return false, where(3) .. "Second argument to luaProtectedTableError must be a string or number"
  end
  return false, where(3) .. "Script attempted to access nonexistent global variable '" .. tostring(k) .. "'"
end
local sdump = string.dump
local function i_dump(...)
  local f = ...
  if callables[f] then return false, where(3) .. "unable to dump given function" end
  if type(f) ~= "function" or select('#', ...) < 1 then
    return false, argmsg(2, 1, "function expected, got " .. tname(1, ...))
  end
  local ok, s = pcall(sdump, f)
  if not ok then return false, where(3) .. "unable to dump given function" end
  return true, s
end
-- Trampoline implementations (called from a Python callable, so the user
-- frame stays on the stack): return true, results... or false, message.
local function i_rawset(...)
  local n = select('#', ...)
  local t, k, v = ...
  if type(t) ~= "table" or n < 1 then return false, argmsg(2, 1, "table expected, got " .. tname(1, ...)) end
  if n < 2 then return false, argmsg(2, 2, "value expected") end
  if n < 3 then return false, argmsg(2, 3, "value expected") end
  if real_of[t] then return false, "Attempt to modify a readonly table" end
  if k == nil then return false, "table index is nil" end
  if k ~= k then return false, "table index is NaN" end
  return true, rawset(t, k, v)
end
local function i_setmetatable(...)
  local n = select('#', ...)
  local t, mt = ...
  if type(t) ~= "table" or n < 1 then return false, argmsg(2, 1, "table expected, got " .. tname(1, ...)) end
  local tm = type(mt)
  if n < 2 or (tm ~= "nil" and tm ~= "table") then return false, argmsg(2, 2, "nil or table expected") end
  if real_of[t] then return false, "Attempt to modify a readonly table" end
  local cur = dgetmetatable(t)
  if cur ~= nil and rawget(cur, "__metatable") ~= nil then
    return false, where(3) .. "cannot change a protected metatable"
  end
  return true, setmetatable(t, mt)
end
local function i_tinsert(...)
  local n = select('#', ...)
  local t = ...
  if type(t) ~= "table" or n < 1 then return false, argmsg(2, 1, "table expected, got " .. tname(1, ...)) end
  if n == 3 then
    local pos = select(2, ...)
    local tp = type(pos)
    if tonumber(pos) == nil or (tp ~= "number" and tp ~= "string") then
      return false, argmsg(2, 2, "number expected, got " .. tname(2, ...))
    end
  elseif n ~= 2 then
    return false, where(3) .. "wrong number of arguments to 'insert'"
  end
  if real_of[t] then return false, "Attempt to modify a readonly table" end
  tinsert(...)
  return true
end
-- Source text starting with ESC is Lua bytecode: Redis's Lua never loads
-- bytecode, it parses it as source (and fails).  A leading space does the
-- same with our stock Lua without moving any line.  Every chunk compiled
-- for a script gets the global proxy as its environment.
local function i_loadstring(...)
  local s, name = ...
  local ts = type(s)
  if ts ~= "string" and ts ~= "number" or select('#', ...) < 1 then
    return false, argmsg(2, 1, "string expected, got " .. tname(1, ...))
  end
  s = tostring(s)
  if name == nil then name = s end
  if sbyte(s, 1) == 27 then s = " " .. s end
  local f, e = loadstring(s, name)
  if f then setfenv(f, P) end
  return true, f, e
end
local function i_load(...)
  local f, name = ...
  if type(f) ~= "function" or select('#', ...) < 1 then
    return false, argmsg(2, 1, "function expected, got " .. tname(1, ...))
  end
  local parts = {}
  while true do
    local ok, piece = pcall(f)
    if not ok then return true, nil, piece end
    if piece == nil or piece == "" then break end
    if type(piece) ~= "string" then return true, nil, where(3) .. "reader function must return a string" end
    parts[#parts + 1] = piece
  end
  local s = tconcat(parts)
  if sbyte(s, 1) == 27 then s = " " .. s end
  local lf, e = loadstring(s, name or "=(load)")
  if lf then setfenv(lf, P) end
  return true, lf, e
end

-- Redis's global pcall (luaRedisPcall): an error table with a string (or
-- number) `err` is returned as that text.
local function pcall_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == "userdata" then e = translate(e) end
  if type(e) == "table" then
    local m = e.err
    local tm = type(m)
    if tm == "string" or tm == "number" then return false, m end
    return false, e, m
  end
  return false, e
end
local function l_pcall(...)
  if select('#', ...) == 0 then return false, "attempt to call a boolean value" end
  return pcall_result(pcall(...))
end
local function l_xpcall(...)
  if select('#', ...) < 2 then error(argmsg(1, 2, "value expected"), 0) end
  local f, h = ...
  return xpcall(f, function(e)
    if type(e) == "userdata" then e = translate(e) end
    return h(e)
  end)
end
local function resume_result(ok, ...)
  if ok then return true, ... end
  local e = ...
  if type(e) == "userdata" then e = translate(e) end
  return false, e
end
local function l_resume(...)
  if type((...)) ~= "thread" then error(argmsg(1, 1, "coroutine expected"), 0) end
  return resume_result(coresume(...))
end

-- The count hook (see the running section).  A Lua hook set with
-- debug.sethook lives in its own thread only, where Redis's C hook is
-- inherited by every coroutine: coroutines install it when they start.
local hook_mode = nil
local py_hook = py.hook
local hookf
local cocreate_, cowrap_ = coroutine.create, coroutine.wrap
local function hooked(f)
  return function(...)
    if hook_mode == "c" then sethook(hookf, "", 100000) elseif hook_mode == "l" then sethook(hookf, "l") end
    return f(...)
  end
end
local function lua_function(f)
  return type(f) == "function" and getinfo(f, "S").what ~= "C"
end
-- (not a trampoline: a thread handed through lupa comes back as a function)
local function l_cocreate(...)
  local f = ...
  if not lua_function(f) then error(argmsg(1, 1, "Lua function expected"), 0) end
  return cocreate_(hooked(f))
end
local function i_cowrap(...)
  local f = ...
  if not lua_function(f) then return false, argmsg(2, 1, "Lua function expected") end
  return true, cowrap_(hooked(f))
end

-- -- libraries ----------------------------------------------------------------
local S = copy(string)
S.rep = py.rep
S.dump = py.dump
local T = copy(table)
T.insert = py.tinsert
local M = copy(math)
M.random = py.random
M.randomseed = py.randomseed
local C = copy(coroutine)
C.resume = l_resume
C.create = l_cocreate
C.wrap = py.cowrap
local null = newproxy()
local CJ = {
  _NAME = "cjson", _VERSION = "2.1.0", null = null,
  encode = py.cjson_encode, decode = py.cjson_decode,
  encode_sparse_array = py.cjson_encode_sparse_array,
  encode_max_depth = py.cjson_encode_max_depth,
  decode_max_depth = py.cjson_decode_max_depth,
  encode_number_precision = py.cjson_encode_number_precision,
  encode_keep_buffer = py.cjson_encode_keep_buffer,
  encode_invalid_numbers = py.cjson_encode_invalid_numbers,
  decode_invalid_numbers = py.cjson_decode_invalid_numbers,
  new = py.cjson_new,
}
local MP = {
  _NAME = "cmsgpack", _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo",
  _DESCRIPTION = "MessagePack C implementation for Lua",
  pack = py.msgpack_pack, unpack = py.msgpack_unpack,
  unpack_one = py.msgpack_unpack_one, unpack_limit = py.msgpack_unpack_limit,
}
local ST = {pack = py.struct_pack, unpack = py.struct_unpack, size = py.struct_size}
local B = {
  tobit = py.bit_tobit, bnot = py.bit_bnot, band = py.bit_band, bor = py.bit_bor,
  bxor = py.bit_bxor, lshift = py.bit_lshift, rshift = py.bit_rshift,
  arshift = py.bit_arshift, rol = py.bit_rol, ror = py.bit_ror, bswap = py.bit_bswap,
  tohex = py.bit_tohex,
}

-- redis.*
local function ok_or_err(v, tag)
  if tag == nil then return v end
  if tag == 1 then return {ok = v} end
  if tag == 2 then return {err = v, ignore_error_stats_update = true} end
  return {err = v}
end
local RD = {
  call = py.call,
  pcall = function(...) return ok_or_err(py.pcall(...)) end,
  sha1hex = py.sha1hex, log = py.log, setresp = py.setresp, set_repl = py.set_repl,
  acl_check_cmd = py.acl_check_cmd,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
}
-- redis.error_reply / status_reply (luaRedisErrorReplyCommand...)
RD.error_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= "string" then
    return {err = "ERR wrong number or type of arguments"}
  end
  local z = sfind(s, "\0", 1, true)
  if z then s = ssub(s, 1, z - 1) end
  if ssub(s, 1, 1) ~= "-" then s = "-" .. s end
  local sp = sfind(s, " ", 1, true)
  local msg, code
  if sp then code, msg = ssub(s, 2, sp - 1), ssub(s, sp + 1) else code, msg = "ERR", ssub(s, 2) end
  msg = sgsub(sgsub(msg, "^[\r\n]+", ""), "[\r\n]+$", "")
  return {err = code .. " " .. msg}
end
RD.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= "string" then
    return {err = "ERR wrong number or type of arguments"}
  end
  return {ok = s}
end
if mode == "eval" then
  RD.replicate_commands = function() return true end
  RD.breakpoint = function() return false end
  RD.debug = function() end
end
-- the functions engine's load-time redis table (functions.md 2.4)
local RD_LOAD = {
  register_function = py.register_function, log = py.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = py.version, REDIS_VERSION_NUM = py.version_num,
}

for _, lib in next, {RD, RD_LOAD, CJ, MP, ST, B, {S.rep, S.dump, T.insert, M.random, M.randomseed,
                                                  py.rawset, py.setmetatable, py.type, py.rawget, py.next,
                                                  py.pairs, py.getmetatable, py.load, py.loadstring,
                                                  py.protected_table_error, py.cowrap}} do
  for _, v in next, lib do
    if type(v) == "userdata" and v ~= null then callables[v] = true end
  end
end

-- -- the global table ----------------------------------------------------------
R = {}
P = protect(R, nil)
local FM = protect({__index = py.protected_table_error}, nil)
fake_meta[P] = FM
setmetatable(R, {__index = protected_table_error})

R._G = P
R._VERSION = _VERSION
R.assert = assert
R.collectgarbage = collectgarbage
R.error = error
R.gcinfo = gcinfo
R.ipairs = ipairs
R.select = select
R.tonumber = tonumber
R.tostring = tostring
R.unpack = unpack
R.rawequal = rawequal
l_next = py.next
R.type = py.type
R.rawget = py.rawget
R.rawset = py.rawset
R.next = l_next
R.pairs = py.pairs
R.getmetatable = py.getmetatable
R.setmetatable = py.setmetatable
R.load = py.load
R.loadstring = py.loadstring
R.pcall = l_pcall
R.xpcall = l_xpcall
R.string = protect(S, nil)
R.table = protect(T, nil)
R.math = protect(M, nil)
R.coroutine = protect(C, nil)
R.bit = protect(B, nil)
R.cjson = protect(CJ, nil)
R.cmsgpack = protect(MP, nil)
R.struct = protect(ST, nil)
R.redis = protect(RD, nil)

-- The string metatable: method calls read __index raw, so they keep working
-- through the string proxy; scripts only ever get a read-only proxy of it.
local SM = getmetatable("")
for k in next, copy(SM) do rawset(SM, k, nil) end
SM.__index = R.string
string_meta_proxy = protect(SM, nil)

local err_handler = loadstring(py.err_handler_def, "@err_handler_def")(getinfo, translate, INTERNAL, type, tostring)
if mode == "eval" then R.__redis__err__handler = err_handler end

-- The functions engine: at load time, globals fall back to the restricted
-- redis table only (functions.md 2.4).
setmetatable(RD_LOAD, {__index = protected_table_error})
local RLOAD = {redis = protect(RD_LOAD, nil)}
setmetatable(RLOAD, {__index = protected_table_error})
local global_meta = dgetmetatable(P)

-- lupa's own globals stay the thread's global table (lupa reads
-- debug.traceback from it); no script can reach it: every chunk compiled
-- for a script (the script itself, loadstring, load) gets the proxy as its
-- environment, functions inherit their creator's, and getfenv/setfenv are
-- gone.  The `python` bridge is removed all the same.
rawset(_G0, "python", nil)

-- -- running ---------------------------------------------------------------------
local script_resp = 2
hookf = function()
  local r = py_hook()
  if r then
    -- never inside our own code (the runner after the script, wrappers):
    -- the next line of the script raises instead
    local info = getinfo(2, "S")
    if info and (info.source == INTERNAL or info.source == "@err_handler_def") then return end
    sethook(hookf, "l")
    hook_mode = "l"
    if r == true then r = "ERR Script killed by user with SCRIPT KILL..." end
    error({err = r})
  end
end

-- luaReplyToRedisReply: the reply's RESP text for the caller's protocol.
-- `used` mirrors the Lua stack slots Redis's C recursion holds, so the
-- "reached lua stack limit" element appears at the same depth.
local function crlf(s) return (sgsub(s, "[\r\n]", " ")) end
local conv
conv = function(v, out, used, resp3, errs)
  local n = #out + 1
  if used > 7996 then
    out[n] = "-ERR reached lua stack limit\r\n"
    errs[#errs + 1] = "ERR reached lua stack limit"
    return
  end
  local t = type(v)
  if t == "string" then
    out[n] = "$" .. #v .. "\r\n" .. v .. "\r\n"
  elseif t == "number" then
    out[n] = sformat(":%d\r\n", v)
  elseif t == "boolean" then
    if script_resp == 2 then
      if v then out[n] = ":1\r\n" elseif resp3 then out[n] = "_\r\n" else out[n] = "$-1\r\n" end
    elseif resp3 then
      out[n] = v and "#t\r\n" or "#f\r\n"
    else
      out[n] = v and ":1\r\n" or ":0\r\n"
    end
  elseif t == "table" then
    local f = rawget(v, "err")
    if type(f) == "string" then
      f = crlf(f)
      out[n] = "-" .. f .. "\r\n"
      if rawget(v, "ignore_error_stats_update") ~= true then errs[#errs + 1] = f end
      return
    end
    f = rawget(v, "ok")
    if type(f) == "string" then out[n] = "+" .. crlf(f) .. "\r\n" return end
    f = rawget(v, "double")
    if type(f) == "number" then
      local s = (f == huge and "inf") or (f == -huge and "-inf") or sformat("%.17g", f)
      if resp3 then out[n] = "," .. s .. "\r\n" else out[n] = "$" .. #s .. "\r\n" .. s .. "\r\n" end
      return
    end
    f = rawget(v, "big_number")
    if type(f) == "string" then
      f = crlf(f)
      if resp3 then out[n] = "(" .. f .. "\r\n" else out[n] = "$" .. #f .. "\r\n" .. f .. "\r\n" end
      return
    end
    f = rawget(v, "verbatim_string")
    if type(f) == "table" then
      local fmt = rawget(f, "format")
      if type(fmt) == "string" then
        local s = rawget(f, "string")
        if type(s) == "string" then
          if resp3 then
            local z = sfind(fmt, "\0", 1, true)
            if z then fmt = ssub(fmt, 1, z - 1) end
            fmt = ssub(fmt .. "   ", 1, 3)
            out[n] = "=" .. (#s + 4) .. "\r\n" .. fmt .. ":" .. s .. "\r\n"
          else
            out[n] = "$" .. #s .. "\r\n" .. s .. "\r\n"
          end
          return
        end
      end
    end
    f = rawget(v, "map")
    if type(f) == "table" then
      out[n] = false
      local cnt = 0
      local k, val = next(f)
      while k ~= nil do
        conv(k, out, used + 4, resp3, errs)
        conv(val, out, used + 3, resp3, errs)
        cnt = cnt + 1
        k, val = next(f, k)
      end
      if resp3 then out[n] = "%" .. cnt .. "\r\n" else out[n] = "*" .. (2 * cnt) .. "\r\n" end
      return
    end
    f = rawget(v, "set")
    if type(f) == "table" then
      out[n] = false
      local cnt = 0
      local k = next(f)
      while k ~= nil do
        conv(k, out, used + 3, resp3, errs)
        cnt = cnt + 1
        k = next(f, k)
      end
      out[n] = (resp3 and "~" or "*") .. cnt .. "\r\n"
      return
    end
    out[n] = false
    local i = 1
    while true do
      local e = rawget(v, i)
      if e == nil then break end
      conv(e, out, used + 1, resp3, errs)
      i = i + 1
    end
    out[n] = "*" .. (i - 1) .. "\r\n"
  else
    out[n] = resp3 and "_\r\n" or "$-1\r\n"
  end
end

-- The outcome of one run, as (kind, ...) for Python:
--   0, resp, errors...          a reply (errors: nested error replies to count)
--   1, msg, source, line, ign   an uncaught error table
--   2, msg                      an uncaught error that is not a table
--   3, msg, ign                 an error table returned as the reply
local function outcome(ok, v, resp3)
  if ok then
    local t = type(v)
    if t == "number" then return 0, sformat(":%d\r\n", v) end
    if t == "string" then return 0, "$" .. #v .. "\r\n" .. v .. "\r\n" end
    if t == "table" then
      local e = rawget(v, "err")
      if type(e) == "string" then return 3, crlf(e), rawget(v, "ignore_error_stats_update") == true end
    end
    local out, errs = {}, {}
    conv(v, out, 2, resp3, errs)
    return 0, tconcat(out), unpack(errs)
  end
  if type(v) ~= "table" then
    local tv = type(v)
    if tv == "string" or tv == "number" then return 2, tostring(v) end
    return 2, "execution failure"
  end
  local msg = rawget(v, "err")
  if type(msg) == "number" then msg = tostring(msg) end
  if type(msg) ~= "string" then msg = "ERR " .. tostring(v) end
  local source, line = rawget(v, "source"), rawget(v, "line")
  if type(source) == "number" then source = tostring(source) end
  if type(line) == "number" then line = tostring(line) end
  if type(source) ~= "string" or type(line) ~= "string" then source, line = nil, nil end
  return 1, msg, source, line, rawget(v, "ignore_error_stats_update") == true
end

local gc_count = 0
local function before_run(hook)
  script_resp = 2
  if hook then
    if hook_mode ~= "c" then sethook(hookf, "", 100000) hook_mode = "c" end
  elseif hook_mode then
    sethook() hook_mode = nil
  end
end
local function after_run(ok, v, resp3)
  if not ok and v == "not enough memory" then collectgarbage("collect") end
  -- the count hook stays installed between runs (it does nothing then);
  -- only the every-line mode of a killed script is undone
  if hook_mode == "l" then sethook(hookf, "", 100000) hook_mode = "c" end
  gc_count = gc_count + 1
  if gc_count == 50 then gc_count = 0 collectgarbage("step", 50) end
  return outcome(ok, v, resp3)
end

local api = {}
api.null = null
-- EVAL: KEYS/ARGV are (re)assigned right before the run, bypassing the
-- protection; the chunk runs under the error handler.
api.run_eval = function(f, nkeys, resp3, hook, ...)
  local all = {...}
  local keys, argv = {}, {}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, select('#', ...) do argv[i - nkeys] = all[i] end
  rawset(R, "KEYS", keys)
  rawset(R, "ARGV", argv)
  before_run(hook)
  local ok, v = xpcall(f, err_handler)
  return after_run(ok, v, resp3)
end
-- FCALL: the callback gets (keys, args) as arguments (xpcall cannot pass
-- them in Lua 5.1: they wait in upvalues of a fixed trampoline).
local cur_f, cur_keys, cur_args
local function call_current()
  local f, keys, args = cur_f, cur_keys, cur_args
  cur_f, cur_keys, cur_args = nil, nil, nil
  return f(keys, args)
end
api.run_function = function(f, nkeys, resp3, hook, ...)
  local all = {...}
  local keys, argv = {}, {}
  for i = 1, nkeys do keys[i] = all[i] end
  for i = nkeys + 1, select('#', ...) do argv[i - nkeys] = all[i] end
  before_run(hook)
  cur_f, cur_keys, cur_args = f, keys, argv
  local ok, v = xpcall(call_current, err_handler)
  return after_run(ok, v, resp3)
end
api.compile = function(code, chunkname)
  if sbyte(code, 1) == 27 then code = " " .. code end
  local f, e = loadstring(code, chunkname)
  if f then setfenv(f, P) end
  return f, e
end
-- FUNCTION LOAD: run the library body with only `redis` (the load-time
-- table) resolvable, then switch the globals back (also on error).
api.run_load = function(f, hook)
  global_meta.__index = RLOAD
  before_run(hook)
  local ok, e = xpcall(f, err_handler)
  if hook_mode == "l" then sethook(hookf, "", 100000) hook_mode = "c" end
  global_meta.__index = R
  if ok then return true end
  if type(e) == "table" then
    local m = rawget(e, "err")
    if type(m) == "string" or type(m) == "number" then return false, tostring(m) end
  end
  return false, "ERR " .. tostring(e)
end
api.setresp = function(n) script_resp = n end
api.gc = function() pcall(collectgarbage, "collect") end
-- where()/argmsg() for Python callables: the callable is the caller of
-- these helpers, the user frame is above it.
api.where = function() return where(3) end
api.argmsg = function(narg, extramsg) return argmsg(2, narg, extramsg) end
api.tonumber = function(v) return tonumber(v) end
api.rawget = rawget
api.impl = {rawset = i_rawset, setmetatable = i_setmetatable, tinsert = i_tinsert,
            rawget = i_rawget, next = i_next, pairs = i_pairs, getmetatable = i_getmetatable,
            load = i_load, loadstring = i_loadstring, protected_table_error = i_protected_table_error,
            dump = i_dump, cowrap = i_cowrap}
api.mark_table = function(t)
  for _, v in next, t do if type(v) == "userdata" and v ~= null then callables[v] = true end end
end
api.is_null = function(v) return v == null end
return api
"""
