"""Access control lists as Redis 7.0 has them (acl.c): users, selectors,
rule parsing and normalisation, permission checks and the ACL log.

Invariants and choices:

* The command universe is Redis 7.0's whole command table
  (``data/command_table.json``), whatever Ambry implements, because Redis
  bases all ACL work on its original table: ``ACL CAT``, ``+@category`` and
  the normalised rules ``ACL LIST`` prints depend on every command of a
  category.  Each command and subcommand has a bit in a selector's
  ``bits`` (an int used as Redis's ``allowed_commands`` bitmap); bit 1023
  is Redis's reserved "future commands" bit, set only by ``+@all`` /
  ``allcommands``, which decides whether a description starts from
  ``+@all`` or ``-@all``.  Allowing or denying a container command changes
  all its subcommands too (ACLChangeSelectorPerm).
* A user has flags, SHA-256 password hashes (hex) and selectors: the root
  selector (rules written outside parentheses) first, then the ``(...)``
  selectors.  A command is allowed when one selector allows the command and
  every key and channel it names; otherwise the error reported is the most
  relevant one (ACLCheckAllUserCommandPerm's choice).
* Clients refer to their user by name (``Client.user``); a deleted user's
  clients are disconnected, so a name never outlives its user.  ``ACL LOAD``
  disconnects the clients of every user but ``default`` (whose rules are
  replaced in place), as Redis frees the whole old user set.
* Cost: ``Server.acl_restricted`` is True only while some user lacks
  ``+@all ~* &*``; it keeps the server gate closed so every command takes
  ``Server._process_checked`` and its permission check.  With only
  unrestricted users nothing here runs per command.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .protocol import split_args
from .reply import Err
from .util import cstr, stringmatchlen

if TYPE_CHECKING:
    from .client import Client
    from .core import Server
    from .registry import Command

# -- constants (server.h) ---------------------------------------------------------

CATEGORIES = (
    "keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
    "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
    "connection", "transaction", "scripting",
)

# ACLCheckAllUserCommandPerm picks the numerically greatest error.
ACL_OK = 0
ACL_DENIED_CMD = 1
ACL_DENIED_KEY = 2
ACL_DENIED_AUTH = 3
ACL_DENIED_CHANNEL = 4

CTX_TOPLEVEL = 0
CTX_MULTI = 1
CTX_LUA = 2
CTX_MODULE = 3

USER_ENABLED = 1 << 0
USER_DISABLED = 1 << 1
USER_NOPASS = 1 << 2
USER_SANITIZE_PAYLOAD = 1 << 3
USER_SANITIZE_PAYLOAD_SKIP = 1 << 4
# The order ACL LIST / GETUSER print user flags in (ACLUserFlags).
_USER_FLAG_NAMES = (
    (b"on", USER_ENABLED), (b"off", USER_DISABLED), (b"nopass", USER_NOPASS),
    (b"skip-sanitize-payload", USER_SANITIZE_PAYLOAD_SKIP), (b"sanitize-payload", USER_SANITIZE_PAYLOAD),
)

SEL_ROOT = 1 << 0
SEL_ALLKEYS = 1 << 1
SEL_ALLCOMMANDS = 1 << 2
SEL_ALLCHANNELS = 1 << 3

ACL_READ = 1 << 0
ACL_WRITE = 1 << 1
ACL_ALL = ACL_READ | ACL_WRITE

USER_COMMAND_BITS_COUNT = 1024
FUTURE_BIT = 1 << (USER_COMMAND_BITS_COUNT - 1)
ALL_BITS = (1 << USER_COMMAND_BITS_COUNT) - 1

ACL_LOG_GROUPING_MAX_TIME_DELTA = 60000
GENPASS_MAX_BITS = 4096

_SPACES = frozenset(b" \t\n\v\f\r\x00")  # isspace() or NUL

# The texts ACLSetUserStringError gives for each errno ACLSetUser may set.
ENOENT = "Unknown command or category name in ACL"
EINVAL = "Syntax error"
EEXIST = ("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any "
          "effect. Try 'resetkeys' to start with an empty list of patterns")
EISDIR = ("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have "
          "any effect. Try 'resetchannels' to start with an empty list of channels")
ENODEV = "The password you are trying to remove from the user does not exist"
EBADMSG = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
EALREADY = "Duplicate user found. A user can only be defined once in config files"
ECHILD = "Allowing first-arg of a subcommand is not supported"

NO_ACLFILE = (
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
    "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) "
    "in order to store users in the Redis configuration."
)


class AclError(Exception):
    """ACLSetUser failed; ``reason`` is ACLSetUserStringError's text for its errno."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def has_spaces(s: bytes) -> bool:
    """ACLStringHasSpaces: usernames and patterns may hold no space or NUL."""
    return any(ch in _SPACES for ch in s)


def hash_password(cleartext: bytes) -> bytes:
    """ACLHashPassword: SHA-256 as lowercase hex."""
    return hashlib.sha256(cleartext).hexdigest().encode()


def _valid_hash(h: bytes) -> bool:
    return len(h) == 64 and all(48 <= ch <= 57 or 97 <= ch <= 102 for ch in h)


# -- the command universe --------------------------------------------------------


class AclCommand:
    """One entry of Redis's original command table, as ACLs see it."""

    __slots__ = ("name", "id", "cats", "parent", "subs", "perm_mask")

    def __init__(self, name: bytes, cid: int, cats: int, parent: AclCommand | None) -> None:
        self.name = name
        self.id = cid
        self.cats = cats
        self.parent = parent
        self.subs: list[AclCommand] = []
        self.perm_mask = 1 << cid  # its bit and, for a container, its subcommands' bits


CAT_FLAG = {name: 1 << i for i, name in enumerate(CATEGORIES)}
COMMANDS: list[AclCommand] = []  # top-level commands then, after each, its subcommands
_TOP: list[AclCommand] = []
_BY_NAME: dict[bytes, AclCommand] = {}  # lower-case fullname ("config|get")
# Per category: the union of ACLChangeSelectorPerm masks of its commands, the
# commands' own bits (for counting), their number, and the commands whose
# first-args a category rule resets.
_CAT_MASK: list[int] = []
_CAT_OWN: list[int] = []
_CAT_SIZE: list[int] = []
_CAT_CMDS: list[list[AclCommand]] = []


def _add_command(name: bytes, cats: int, parent: AclCommand | None) -> AclCommand:
    cid = len(COMMANDS)
    if cid >= USER_COMMAND_BITS_COUNT - 1:
        raise RuntimeError("ACL command bitmap is full")
    ac = AclCommand(name, cid, cats, parent)
    COMMANDS.append(ac)
    _BY_NAME[name] = ac
    if parent is None:
        _TOP.append(ac)
    else:
        parent.subs.append(ac)
        parent.perm_mask |= ac.perm_mask
    return ac


def _build_index() -> None:
    table: dict[str, Any] = json.loads((Path(__file__).with_name("data") / "command_table.json").read_text())
    for fullname, spec in table.items():
        cats = 0
        for c in spec["info"][6]["set"]:
            cats |= CAT_FLAG[c["s"][1:]]
        parent = None
        if "|" in fullname:
            parent = _BY_NAME[fullname.split("|", 1)[0].encode()]
        _add_command(fullname.encode(), cats, parent)
    for flag in CAT_FLAG.values():
        mask = own = 0
        members = []
        for ac in COMMANDS:
            if ac.cats & flag:
                mask |= ac.perm_mask
                own |= 1 << ac.id
                members.append(ac)
        _CAT_MASK.append(mask)
        _CAT_OWN.append(own)
        _CAT_SIZE.append(len(members))
        _CAT_CMDS.append(members)


_build_index()


def lookup_command(name: bytes) -> AclCommand | None:
    """ACLLookupCommand: ``get`` or ``config|get``, case-insensitive, in the original table."""
    return _BY_NAME.get(name.lower())


def command_id(cmd: Command) -> int:
    """The ACL bit of an implemented command; a command outside Redis's table
    (none today) gets a bit of its own, in no category, on first use."""
    ac = _BY_NAME.get(cmd.bname)
    if ac is None:
        parent = _BY_NAME.get(cmd.parent.bname) if cmd.parent is not None else None
        ac = _add_command(cmd.bname, 0, parent)
    return ac.id


def category_commands(name: bytes) -> list[bytes] | None:
    """ACL CAT <category>: the full names in the category (None: no such category)."""
    try:
        idx = [c.encode() for c in CATEGORIES].index(name.lower())
    except ValueError:
        return None
    return [ac.name for ac in _CAT_CMDS[idx]]


def _category_index(name: bytes) -> int:
    low = name.lower()
    for i, cat in enumerate(CATEGORIES):
        if cat.encode() == low:
            return i
    return -1


# -- selectors and users ---------------------------------------------------------


class KeyPattern:
    """A key pattern with its %R / %W permissions."""

    __slots__ = ("pattern", "flags")

    def __init__(self, pattern: bytes, flags: int) -> None:
        self.pattern = pattern
        self.flags = flags

    def describe(self) -> bytes:
        """sdsCatPatternString."""
        if self.flags == ACL_ALL:
            return b"~" + self.pattern
        if self.flags == ACL_READ:
            return b"%R~" + self.pattern
        return b"%W~" + self.pattern


class Selector:
    """aclSelector: command bits, first-args, key and channel patterns."""

    __slots__ = ("flags", "bits", "firstargs", "patterns", "channels")

    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.bits = 0
        self.firstargs: dict[int, list[bytes]] = {}
        self.patterns: list[KeyPattern] = []
        self.channels: list[bytes] = []

    def copy(self) -> Selector:
        s = Selector(self.flags)
        s.bits = self.bits
        s.firstargs = {k: list(v) for k, v in self.firstargs.items()}
        s.patterns = [KeyPattern(p.pattern, p.flags) for p in self.patterns]
        s.channels = list(self.channels)
        return s

    # -- ACLSetSelector --------------------------------------------------------

    def _change_perm(self, ac: AclCommand, allow: bool) -> None:
        """ACLChangeSelectorPerm: a container's subcommands follow it."""
        if allow:
            self.bits |= ac.perm_mask
        else:
            self.bits &= ~ac.perm_mask
            self.flags &= ~SEL_ALLCOMMANDS
        self.firstargs.pop(ac.id, None)

    def _set_category(self, idx: int, allow: bool) -> None:
        if allow:
            self.bits |= _CAT_MASK[idx]
        else:
            self.bits &= ~_CAT_MASK[idx]
            self.flags &= ~SEL_ALLCOMMANDS
        if self.firstargs:
            for ac in _CAT_CMDS[idx]:
                self.firstargs.pop(ac.id, None)

    def apply(self, op: bytes) -> None:
        """ACLSetSelector: one rule; AclError on a bad one (nothing changed then)."""
        low = op.lower()
        head = op[:1]
        if low in (b"allkeys", b"~*"):
            self.flags |= SEL_ALLKEYS
            self.patterns = []
        elif low == b"resetkeys":
            self.flags &= ~SEL_ALLKEYS
            self.patterns = []
        elif low in (b"allchannels", b"&*"):
            self.flags |= SEL_ALLCHANNELS
            self.channels = []
        elif low == b"resetchannels":
            self.flags &= ~SEL_ALLCHANNELS
            self.channels = []
        elif low in (b"allcommands", b"+@all"):
            self.bits = ALL_BITS
            self.flags |= SEL_ALLCOMMANDS
            self.firstargs = {}
        elif low in (b"nocommands", b"-@all"):
            self.bits = 0
            self.flags &= ~SEL_ALLCOMMANDS
            self.firstargs = {}
        elif head in (b"~", b"%"):
            if self.flags & SEL_ALLKEYS:
                raise AclError(EEXIST)
            flags = 0
            offset = 1
            if head == b"%":
                n = len(op)
                while offset < n:
                    ch = op[offset]
                    if ch in b"Rr" and not flags & ACL_READ:
                        flags |= ACL_READ
                    elif ch in b"Ww" and not flags & ACL_WRITE:
                        flags |= ACL_WRITE
                    elif ch == 0x7E and flags:  # '~'
                        offset += 1
                        break
                    else:
                        raise AclError(EINVAL)
                    offset += 1
                if not flags:
                    raise AclError(EINVAL)
            else:
                flags = ACL_ALL
            pattern = op[offset:]
            if has_spaces(pattern):
                raise AclError(EINVAL)
            for p in self.patterns:
                if p.pattern == pattern:
                    p.flags |= flags
                    break
            else:
                self.patterns.append(KeyPattern(pattern, flags))
            self.flags &= ~SEL_ALLKEYS
        elif head == b"&":
            if self.flags & SEL_ALLCHANNELS:
                raise AclError(EISDIR)
            pattern = op[1:]
            if has_spaces(pattern):
                raise AclError(EINVAL)
            if pattern not in self.channels:
                self.channels.append(pattern)
            self.flags &= ~SEL_ALLCHANNELS
        elif head == b"+" and op[1:2] != b"@":
            rest = op[1:]
            if b"|" not in rest:
                ac = lookup_command(rest)
                if ac is None:
                    raise AclError(ENOENT)
                self._change_perm(ac, True)
            else:
                base, sub = rest.rsplit(b"|", 1)
                ac = lookup_command(base)
                if ac is None:
                    raise AclError(ENOENT)
                if ac.parent is not None:
                    raise AclError(ECHILD)
                if not sub:
                    raise AclError(EINVAL)
                if ac.subs:
                    ac = lookup_command(rest)
                    if ac is None:
                        raise AclError(ENOENT)
                    self._change_perm(ac, True)
                else:
                    # Allowing one first argument of an otherwise blocked
                    # command (SELECT|0): deprecated but supported in 7.0.
                    allowed = self.firstargs.setdefault(ac.id, [])
                    if not any(sub.lower() == a.lower() for a in allowed):
                        allowed.append(sub)
        elif head == b"-" and op[1:2] != b"@":
            ac = lookup_command(op[1:])
            if ac is None:
                raise AclError(ENOENT)
            self._change_perm(ac, False)
        elif head in (b"+", b"-") and op[1:2] == b"@":
            idx = _category_index(op[2:])
            if idx < 0:
                raise AclError(ENOENT)
            self._set_category(idx, head == b"+")
        else:
            raise AclError(EINVAL)

    # -- descriptions ------------------------------------------------------------

    def describe_commands(self) -> bytes:
        """ACLDescribeSelectorCommandRules: ``+@all``/``-@all``, then the
        categories that best approximate the bitmap (greedy, in category
        order), then single commands and first-args to make it exact."""
        bits = self.bits
        additive = not bits & FUTURE_BIT
        rules = [b"-@all" if additive else b"+@all"]
        fake = 0 if additive else ALL_BITS
        temp = bits
        applied = [False] * len(CATEGORIES)
        while True:
            best = -1
            mindiff = 1 << 62
            maxsame = 0
            for j in range(len(CATEGORIES)):
                if applied[j]:
                    continue
                on = (temp & _CAT_OWN[j]).bit_count()
                off = _CAT_SIZE[j] - on
                diff, same = (off, on) if additive else (on, off)
                if same > diff and (diff < mindiff or (diff == mindiff and same > maxsame)):
                    best, mindiff, maxsame = j, diff, same
            if best < 0:
                break
            if additive:
                rules.append(b"+@" + CATEGORIES[best].encode())
                fake |= _CAT_MASK[best]
                temp &= ~_CAT_MASK[best]
            else:
                rules.append(b"-@" + CATEGORIES[best].encode())
                fake &= ~_CAT_MASK[best]
                temp |= _CAT_MASK[best]
            applied[best] = True
        # Single commands, a container before its subcommands (Redis walks
        # its command dict, whose order is random per process; ours is the
        # table's).
        for top in _TOP:
            for ac in (top, *top.subs):
                userbit = (bits >> ac.id) & 1
                if userbit != (fake >> ac.id) & 1:
                    rules.append((b"+" if userbit else b"-") + ac.name)
                    if userbit:
                        fake |= ac.perm_mask
                    else:
                        fake &= ~ac.perm_mask
                if not userbit:
                    for arg in self.firstargs.get(ac.id, ()):
                        rules.append(b"+" + ac.name + b"|" + arg)
        return b" ".join(rules)

    def describe_keys(self) -> bytes:
        """The ``keys`` field of ACL GETUSER."""
        if self.flags & SEL_ALLKEYS:
            return b"~*"
        return b" ".join(p.describe() for p in self.patterns)

    def describe_channels(self) -> bytes:
        """The ``channels`` field of ACL GETUSER."""
        if self.flags & SEL_ALLCHANNELS:
            return b"&*"
        return b" ".join(b"&" + ch for ch in self.channels)

    def describe(self) -> bytes:
        """ACLDescribeSelector: keys, channels, then command rules."""
        parts: list[bytes] = []
        if self.flags & SEL_ALLKEYS:
            parts.append(b"~*")
        else:
            parts.extend(p.describe() for p in self.patterns)
        if self.flags & SEL_ALLCHANNELS:
            parts.append(b"&*")
        else:
            parts.append(b"resetchannels")
            parts.extend(b"&" + ch for ch in self.channels)
        parts.append(self.describe_commands())
        return b" ".join(parts)

    def unrestricted(self) -> bool:
        """Every command, key and channel is allowed by this selector alone."""
        return bool(
            self.flags & SEL_ALLKEYS
            and self.flags & SEL_ALLCHANNELS
            and (self.flags & SEL_ALLCOMMANDS or self.bits == ALL_BITS)
        )

    # -- checks ---------------------------------------------------------------------

    def unrestricted_read(self) -> bool:
        """ACLSelectorHasUnrestrictedKeyAccess(CMD_KEY_ACCESS): all keys, or
        a pattern that is literally ``*`` with read permission."""
        if self.flags & SEL_ALLKEYS:
            return True
        return any(p.pattern == b"*" and p.flags & ACL_READ for p in self.patterns)

    def check_key(self, key: bytes, need: int) -> bool:
        """ACLSelectorCheckKey with the access a key spec asks for."""
        if self.flags & SEL_ALLKEYS:
            return True
        for p in self.patterns:
            if (p.flags & need) == need and stringmatchlen(p.pattern, key):
                return True
        return False


def _channel_allowed(channels: Iterable[bytes], channel: bytes, is_pattern: bool) -> bool:
    """ACLCheckChannelAgainstList: a channel is matched against the patterns,
    a PSUBSCRIBE pattern only literally."""
    for p in channels:
        if (is_pattern and p == channel) or (not is_pattern and stringmatchlen(p, channel)):
            return True
    return False


class User:
    """An ACL user: flags, password hashes and selectors (root first)."""

    __slots__ = ("name", "flags", "passwords", "selectors")

    def __init__(self, name: bytes, pubsub_default: int) -> None:
        self.name = name
        self.flags = USER_DISABLED
        self.passwords: list[bytes] = []
        self.selectors: list[Selector] = [Selector(SEL_ROOT | pubsub_default)]

    @property
    def root(self) -> Selector:
        return self.selectors[0]

    def copy_from(self, src: User) -> None:
        """ACLCopyUser: the rules of ``src``, this user's name."""
        self.flags = src.flags
        self.passwords = list(src.passwords)
        self.selectors = [s.copy() for s in src.selectors]

    def apply(self, op: bytes, pubsub_default: int) -> None:
        """ACLSetUser: one rule (user flags, passwords, selectors, or a root
        selector rule).  ``pubsub_default`` is acl-pubsub-default's selector
        flag, for new selectors and ``reset``."""
        if not op:
            return
        low = op.lower()
        head = op[:1]
        if low == b"on":
            self.flags = (self.flags | USER_ENABLED) & ~USER_DISABLED
        elif low == b"off":
            self.flags = (self.flags | USER_DISABLED) & ~USER_ENABLED
        elif low == b"skip-sanitize-payload":
            self.flags = (self.flags | USER_SANITIZE_PAYLOAD_SKIP) & ~USER_SANITIZE_PAYLOAD
        elif low == b"sanitize-payload":
            self.flags = (self.flags | USER_SANITIZE_PAYLOAD) & ~USER_SANITIZE_PAYLOAD_SKIP
        elif low == b"nopass":
            self.flags |= USER_NOPASS
            self.passwords = []
        elif low == b"resetpass":
            self.flags &= ~USER_NOPASS
            self.passwords = []
        elif head in (b">", b"#"):
            if head == b">":
                pw = hash_password(op[1:])
            else:
                pw = op[1:]
                if not _valid_hash(pw):
                    raise AclError(EBADMSG)
            if pw not in self.passwords:
                self.passwords.append(pw)
            self.flags &= ~USER_NOPASS
        elif head in (b"<", b"!"):
            if head == b"<":
                pw = hash_password(op[1:])
            else:
                pw = op[1:]
                if not _valid_hash(pw):
                    raise AclError(EBADMSG)
            if pw not in self.passwords:
                raise AclError(ENODEV)
            self.passwords.remove(pw)
        elif head == b"(" and op.endswith(b")"):
            sel = Selector(pubsub_default)
            for sop in split_args(op[1:-1]) or []:
                sel.apply(sop)
            self.selectors.append(sel)
        elif low == b"clearselectors":
            del self.selectors[1:]
        elif low == b"reset":
            self.apply(b"resetpass", pubsub_default)
            self.apply(b"resetkeys", pubsub_default)
            self.apply(b"resetchannels", pubsub_default)
            if pubsub_default & SEL_ALLCHANNELS:
                self.apply(b"allchannels", pubsub_default)
            self.apply(b"off", pubsub_default)
            self.apply(b"sanitize-payload", pubsub_default)
            self.apply(b"clearselectors", pubsub_default)
            self.apply(b"-@all", pubsub_default)
        else:
            self.root.apply(op)

    def describe(self) -> bytes:
        """ACLDescribeUser: flags, password hashes, root rules, ``(selectors)``."""
        out = b""
        for name, flag in _USER_FLAG_NAMES:
            if self.flags & flag:
                out += name + b" "
        for pw in self.passwords:
            out += b"#" + pw + b" "
        for sel in self.selectors:
            if sel.flags & SEL_ROOT:
                out += sel.describe()
            else:
                out += b" (" + sel.describe() + b")"
        return out

    def flag_names(self) -> list[bytes]:
        return [name for name, flag in _USER_FLAG_NAMES if self.flags & flag]

    def unrestricted(self) -> bool:
        return self.root.unrestricted()

    def check_password(self, password: bytes) -> bool:
        """ACLCheckUserCredentials once the user is known."""
        if self.flags & USER_DISABLED:
            return False
        if self.flags & USER_NOPASS:
            return True
        hashed = hash_password(password)
        ok = False
        for pw in self.passwords:
            ok |= hmac.compare_digest(hashed, pw)
        return ok


def merge_selector_args(args: list[bytes]) -> tuple[list[bytes] | None, int]:
    """ACLMergeSelectorArguments: a selector may be spread over several
    arguments, ``(~a`` ... ``+get)``; (None, index of the opening argument)
    when a parenthesis is never closed."""
    out: list[bytes] = []
    start = -1
    cur = b""
    for j, op in enumerate(args):
        if op[:1] == b"(" and not op.endswith(b")"):
            cur = op
            start = j
            continue
        if start != -1:
            cur += b" " + op
            if op.endswith(b")"):
                start = -1
                out.append(cur)
            continue
        out.append(op)
    if start != -1:
        return None, start
    return out, -1


# -- channels a command names (db.c commands_with_channels) ----------------------

CHANNEL_PATTERN = 1
CHANNEL_PUBLISH = 2
CHANNEL_SUBSCRIBE = 4
CHANNEL_UNSUBSCRIBE = 8
_CHANNEL_SPECS: dict[bytes, tuple[int, int]] = {  # flags, count (-1: to the end) from argv[1]
    b"subscribe": (CHANNEL_SUBSCRIBE, -1),
    b"ssubscribe": (CHANNEL_SUBSCRIBE, -1),
    b"unsubscribe": (CHANNEL_UNSUBSCRIBE, -1),
    b"sunsubscribe": (CHANNEL_UNSUBSCRIBE, -1),
    b"psubscribe": (CHANNEL_PATTERN | CHANNEL_SUBSCRIBE, -1),
    b"punsubscribe": (CHANNEL_PATTERN | CHANNEL_UNSUBSCRIBE, -1),
    b"publish": (CHANNEL_PUBLISH, 1),
    b"spublish": (CHANNEL_PUBLISH, 1),
}
_CHECKED_CHANNELS = CHANNEL_PUBLISH | CHANNEL_SUBSCRIBE


# Keys of a command: introspection's getkeys machinery (COMMAND GETKEYS),
# imported on first use (the commands package imports this module).
_key_fns: tuple[Callable[[Command], bool], Callable[[Command, list[bytes]], Any]] | None = None
_HAS_KEYS: dict[Command, bool] = {}


def _keys_of(cmd: Command, argv: list[bytes]) -> list[tuple[int, int]] | None:
    """(position, needed %R/%W access) of each key, or None when the command
    has no key arguments at all (doesCommandHaveKeys)."""
    global _key_fns
    if _key_fns is None:
        from .commands.introspection import command_has_keys, get_keys_with_flags

        _key_fns = (command_has_keys, get_keys_with_flags)
    has = _HAS_KEYS.get(cmd)
    if has is None:
        has = _HAS_KEYS[cmd] = _key_fns[0](cmd)
    if not has:
        return None
    out = []
    for pos, flags in _key_fns[1](cmd, argv):
        need = 0
        if "access" in flags:
            need |= ACL_READ
        if "insert" in flags or "delete" in flags or "update" in flags:
            need |= ACL_WRITE
        out.append((pos, need))
    return out


def _selector_check(sel: Selector, cid: int, cmd: Command, argv: list[bytes],
                    cache: list[Any]) -> tuple[int, int]:
    """ACLSelectorCheckCmd: (result, argv index of the denied key/channel).
    ``cache`` holds the command's keys between selectors."""
    flags = sel.flags
    if not flags & SEL_ALLCOMMANDS and not cmd.no_auth and not (sel.bits >> cid) & 1:
        allowed = sel.firstargs.get(cid)
        if len(argv) < 2 or not allowed:
            return ACL_DENIED_CMD, 0
        arg = argv[2 if cmd.parent is not None else 1].lower()
        if not any(arg == a.lower() for a in allowed):
            return ACL_DENIED_CMD, 0
    if not flags & SEL_ALLKEYS:
        if not cache:
            cache.append(_keys_of(cmd, argv))
        keys = cache[0]
        if keys:
            for pos, need in keys:
                if not sel.check_key(argv[pos], need):
                    return ACL_DENIED_KEY, pos
    if not flags & SEL_ALLCHANNELS:
        spec = _CHANNEL_SPECS.get(cmd.bname)
        if spec is not None and spec[0] & _CHECKED_CHANNELS:
            cflags, count = spec
            stop = len(argv) if count < 0 else min(len(argv), 1 + count)
            is_pattern = bool(cflags & CHANNEL_PATTERN)
            for pos in range(1, stop):
                if not _channel_allowed(sel.channels, argv[pos], is_pattern):
                    return ACL_DENIED_CHANNEL, pos
    return ACL_OK, 0


def check_user(u: User, cmd: Command, argv: list[bytes]) -> tuple[int, int]:
    """ACLCheckAllUserCommandPerm: OK when one selector allows everything;
    otherwise no selector allowing the command gives DENIED_CMD, else the
    last (greatest) key/channel no selector could match."""
    cid = command_id(cmd)
    relevant = ACL_DENIED_CMD
    last_idx = 0
    cache: list[Any] = []
    for sel in u.selectors:
        res, idx = _selector_check(sel, cid, cmd, argv, cache)
        if res == ACL_OK:
            return ACL_OK, 0
        if res > relevant or (res == relevant and idx > last_idx):
            relevant, last_idx = res, idx
    return relevant, last_idx


# -- the ACL log ----------------------------------------------------------------


class LogEntry:
    """ACLLogEntry: one (grouped) denial."""

    __slots__ = ("count", "reason", "context", "object", "username", "ctime", "cinfo")

    def __init__(self, reason: int, context: int, obj: bytes, username: bytes, ctime: int, cinfo: bytes) -> None:
        self.count = 1
        self.reason = reason
        self.context = context
        self.object = obj
        self.username = username
        self.ctime = ctime
        self.cinfo = cinfo

    def matches(self, other: LogEntry) -> bool:
        """ACLLogMatchEntry: same reason, context, object and user within a minute."""
        return (
            self.reason == other.reason
            and self.context == other.context
            and abs(self.ctime - other.ctime) <= ACL_LOG_GROUPING_MAX_TIME_DELTA
            and self.object == other.object
            and self.username == other.username
        )


REASON_NAMES = {ACL_DENIED_CMD: b"command", ACL_DENIED_KEY: b"key", ACL_DENIED_CHANNEL: b"channel",
                ACL_DENIED_AUTH: b"auth"}
CONTEXT_NAMES = {CTX_TOPLEVEL: b"toplevel", CTX_MULTI: b"multi", CTX_LUA: b"lua", CTX_MODULE: b"module"}

# NOPERM replies of processCommand (7.0 texts).
_NOPERM_KEY = Err("NOPERM this user has no permissions to access one of the keys used as arguments")
_NOPERM_CHANNEL = Err("NOPERM this user has no permissions to access one of the channels used as arguments")
_EXEC_REASONS = {
    ACL_DENIED_CMD: "no permission to execute the command or subcommand",
    ACL_DENIED_KEY: "no permission to touch the specified keys",
    ACL_DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
}


def mstime() -> int:
    """mstime(): wall-clock milliseconds."""
    return time.time_ns() // 1_000_000


# -- the server's ACL state --------------------------------------------------------


class Acl:
    """The users (Redis's ``Users`` rax plus ``DefaultUser``) and the ACL log
    of one server, with the operations the ACL commands, AUTH/HELLO and the
    execution entry need."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.log: list[LogEntry] = []  # newest first
        # ACLCreateDefaultUser, before the configuration is applied.
        self.default = User(b"default", 0)
        for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
            self.default.apply(op, 0)
        self.users: dict[bytes, User] = {b"default": self.default}

    # -- state ---------------------------------------------------------------------

    def pubsub_default(self) -> int:
        """acl-pubsub-default as the selector flag new selectors start with."""
        return SEL_ALLCHANNELS if self.srv.cfg.acl_pubsub_default == "allchannels" else 0

    def get_user(self, name: bytes) -> User | None:
        return self.users.get(name)

    def user_of(self, c: Client) -> User:
        return self.users.get(c.user) or self.default

    def changed(self) -> None:
        """Recompute ``srv.acl_restricted`` (and the gate) after any change."""
        srv = self.srv
        restricted = any(not u.unrestricted() for u in self.users.values())
        if restricted != srv.acl_restricted:
            srv.acl_restricted = restricted
            srv.update_gate()

    def auth_required(self) -> bool:
        """authRequired's server half: the default user has a password or is off."""
        f = self.default.flags
        return not (f & USER_NOPASS) or bool(f & USER_DISABLED)

    def default_nopass(self) -> bool:
        """Protected mode applies while the default user is ``nopass``."""
        return bool(self.default.flags & USER_NOPASS)

    def set_default_password(self, password: bytes | None) -> None:
        """ACLUpdateDefaultUserPassword: what ``requirepass`` does."""
        self.default.apply(b"resetpass", 0)
        if password:
            self.default.apply(b">" + password, 0)
        else:
            self.default.apply(b"nopass", 0)

    # -- authentication ----------------------------------------------------------------

    def authenticate(self, c: Client, username: bytes, password: bytes) -> bool:
        """ACLAuthenticateUser: switch the client to the user, or log the failure."""
        u = self.users.get(username)
        if u is not None and u.check_password(password):
            c.authenticated = True
            c.user = username
            return True
        self.add_log_entry(c, ACL_DENIED_AUTH, self.context_of(c), c.argv[0] if c.argv else b"auth",
                           username=username)
        return False

    # -- permission checks --------------------------------------------------------------

    @staticmethod
    def context_of(c: Client) -> int:
        """MULTI when queueing or inside EXEC (Redis keeps CLIENT_MULTI set then)."""
        return CTX_MULTI if c.mstate is not None or c.in_exec else CTX_TOPLEVEL

    def _denial(self, c: Client, cmd: Command, argv: list[bytes]) -> tuple[int, int] | None:
        """ACLCheckAllUserCommandPerm: None when allowed, else (reason, the
        denied key or channel's position).  The primary link runs
        everything (Redis's master client has no user)."""
        if c.is_primary_link:
            return None
        u = self.user_of(c)
        if u.root.unrestricted():
            return None
        res, pos = check_user(u, cmd, argv)
        return None if res == ACL_OK else (res, pos)

    def check_command(self, c: Client, cmd: Command, argv: list[bytes]) -> Err | None:
        """processCommand's ACLCheckAllPerm: the NOPERM reply (after an ACL
        LOG entry) or None.  The primary link runs everything, as Redis's
        master client has no user."""
        denied = self._denial(c, cmd, argv)
        if denied is None:
            return None
        res, pos = denied
        # Redis has already set c->cmd (and argv) when it checks: the log's
        # client info names the denied command.
        c.cmd = cmd
        c.argv = argv
        self.add_log_entry(c, res, self.context_of(c), self._object(res, cmd, argv, pos))
        if res == ACL_DENIED_CMD:
            return Err(b"NOPERM this user has no permissions to run the '" + cmd.bname + b"' command")
        if res == ACL_DENIED_KEY:
            return _NOPERM_KEY
        return _NOPERM_CHANNEL

    def exec_check(self, c: Client, cmd: Command, argv: list[bytes]) -> Err | None:
        """execCommand's re-check of a queued command: the rules may have
        changed since it was queued."""
        denied = self._denial(c, cmd, argv)
        if denied is None:
            return None
        res, pos = denied
        self.add_log_entry(c, res, CTX_MULTI, self._object(res, cmd, argv, pos))
        return Err(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
            "This command is no longer allowed for the following reason: " + _EXEC_REASONS[res]
        )

    def script_check(self, c: Client, caller: Client, cmd: Command, argv: list[bytes]) -> Err | None:
        """scriptVerifyACL (7.0): a ``redis.call`` of the script run by
        ``caller``, checked against the caller's user; the error the script
        sees (None: allowed).  A denial is logged with context ``lua``, the
        caller's user and the caller's client info (``cmd=eval``/``fcall``)."""
        if caller.is_primary_link:
            return None  # the master client has no user: it runs anything
        u = self.user_of(caller)
        if u.root.unrestricted():
            return None
        res, pos = check_user(u, cmd, argv)
        if res == ACL_OK:
            return None
        self.add_log_entry(caller, res, CTX_LUA, self._object(res, cmd, argv, pos), username=u.name)
        if res == ACL_DENIED_CMD:
            return Err("ERR The user executing the script can't run this command or subcommand")
        if res == ACL_DENIED_KEY:
            return Err("ERR The user executing the script can't access at least one of the keys mentioned "
                       "in the command arguments")
        return Err("ERR The user executing the script can't publish to the channel mentioned in the command")

    def script_allowed(self, caller: Client, cmd: Command, argv: list[bytes]) -> bool:
        """redis.acl_check_cmd: may the user that runs the script run this
        command with these arguments (command, keys, channels; no log entry,
        arity not checked)?  The master client may run anything."""
        if caller.is_primary_link:
            return True
        u = self.user_of(caller)
        if u.root.unrestricted():
            return True
        return check_user(u, cmd, argv)[0] == ACL_OK

    def unrestricted_key_access(self, c: Client, cmd: Command, argv: list[bytes]) -> bool:
        """ACLUserCheckCmdWithUnrestrictedKeyAccess(user, cmd, argv,
        CMD_KEY_ACCESS): some selector allows the whole command *and* may
        read every key (``allkeys``, ``~*`` or ``%R~*`` written literally:
        ``~?`` or ``~**`` do not count).  SORT accepts BY and GET patterns
        only then.  A script's command is judged by the script caller's
        user; the master client has no user and passes."""
        if not self.srv.acl_restricted:
            return True
        if getattr(c, "is_script", False):
            ctx = getattr(getattr(self.srv, "scripting", None), "ctx", None)
            if ctx is not None:
                c = ctx.caller
        if c.is_primary_link:
            return True
        cid = command_id(cmd)
        cache: list[Any] = []
        for sel in self.user_of(c).selectors:
            if _selector_check(sel, cid, cmd, argv, cache)[0] == ACL_OK and sel.unrestricted_read():
                return True
        return False

    @staticmethod
    def _object(res: int, cmd: Command, argv: list[bytes], pos: int) -> bytes:
        return cmd.bname if res == ACL_DENIED_CMD else bytes(argv[pos])

    def add_log_entry(self, c: Client, reason: int, context: int, obj: bytes,
                      username: bytes | None = None) -> None:
        """addACLLogEntry: group with one of the 10 newest similar entries, or
        add a new one and trim to acllog-max-len."""
        now = mstime()
        cinfo = self.srv.client_info_line(c, c).encode("utf-8", "surrogateescape")
        le = LogEntry(reason, context, bytes(obj), username if username is not None else c.user, now, cinfo)
        log = self.log
        for i, cur in enumerate(log[:10]):
            if cur.matches(le):
                del log[i]
                log.insert(0, cur)
                cur.cinfo = cinfo
                cur.ctime = now
                cur.count += 1
                return
        log.insert(0, le)
        maxlen = self.srv.cfg.acllog_max_len
        if len(log) > maxlen:
            del log[maxlen:]

    # -- changes -------------------------------------------------------------------------

    def setuser(self, c: Client, name: bytes, ops: list[bytes]) -> None:
        """ACL SETUSER: all rules are applied to a copy first, so a bad one
        changes nothing; revoked channels disconnect the user's subscribers."""
        pd = self.pubsub_default()
        temp = User(name, pd)
        u = self.users.get(name)
        if u is not None:
            temp.copy_from(u)
        for op in ops:
            try:
                temp.apply(op, pd)
            except AclError as e:
                raise Err(b"ERR Error in ACL SETUSER modifier '" + cstr(op, len(op)) + b"': "
                          + e.reason.encode()) from None
        if u is not None:
            self._kill_pubsub_if_needed(c, temp, u)
        else:
            u = self.users[name] = User(name, pd)
        u.copy_from(temp)
        self.changed()

    def deluser(self, c: Client, names: list[bytes]) -> int:
        """ACL DELUSER: the users' clients are disconnected."""
        if b"default" in names:
            raise Err("ERR The 'default' user cannot be removed")
        deleted = 0
        for name in names:
            if self.users.pop(name, None) is not None:
                self._kill_clients_of(c, name)
                deleted += 1
        self.changed()
        return deleted

    def _clients(self, current: Client | None) -> list[Client]:
        out = list(self.srv.clients.values())
        if current is not None and current not in out:
            out.append(current)
        return out

    def _kill(self, current: Client | None, victim: Client) -> None:
        """freeClientAsync, or CLOSE_AFTER_COMMAND for the client running the command."""
        if victim is current:
            victim.close_after_reply = True
        else:
            victim.flush()
            victim.transport_close()

    def _kill_clients_of(self, current: Client | None, name: bytes) -> None:
        """ACLFreeUserAndKillClients: back to an unauthenticated default user, then closed."""
        for cl in self._clients(current):
            if cl.user == name and not cl.closed:
                cl.user = b"default"
                cl.authenticated = False
                self._kill(current, cl)

    def _kill_pubsub_if_needed(self, current: Client | None, new: User, original: User) -> None:
        """ACLKillPubsubClientsIfNeeded: subscribers of the user whose channels
        or patterns the new rules no longer allow are disconnected."""
        if any(s.flags & SEL_ALLCHANNELS for s in new.selectors):
            return
        upcoming = [ch for s in new.selectors for ch in s.channels]
        if all(ch in upcoming for s in original.selectors for ch in s.channels):
            return
        for cl in self._clients(current):
            if cl.user != original.name or cl.closed or not cl.in_pubsub_mode():
                continue
            kill = any(not _channel_allowed(upcoming, p, True) for p in cl.patterns)
            if not kill:
                kill = any(not _channel_allowed(upcoming, ch, False) for ch in cl.channels) or any(
                    not _channel_allowed(upcoming, ch, False) for ch in cl.shard_channels
                )
            if kill:
                self._kill(current, cl)

    # -- descriptions ------------------------------------------------------------------

    def sorted_users(self) -> list[User]:
        """Users in Redis's rax order (bytewise)."""
        return [self.users[n] for n in sorted(self.users)]

    def list_lines(self) -> list[bytes]:
        """ACL LIST / ACL SAVE / CONFIG REWRITE lines, without the ``user`` word."""
        return [u.name + b" " + u.describe() for u in self.sorted_users()]

    # -- files -------------------------------------------------------------------------

    def load_file(self, current: Client | None, filename: str) -> str | None:
        """ACLLoadFromFile: None on success, else the one-line error text.
        Every line is checked before anything changes; on success the
        default user's rules are replaced in place and every other old
        user's clients are disconnected."""
        try:
            with open(filename, "rb") as f:
                data = f.read()
        except IsADirectoryError:
            data = b""  # fopen() of a directory succeeds and reads nothing
        except OSError as e:
            return f"Error loading ACLs, opening file '{filename}': {os.strerror(e.errno or 0)}"
        fname = filename.encode("utf-8", "surrogateescape")
        errors = b""
        pd = self.pubsub_default()
        new: dict[bytes, User] = {}
        for i, raw in enumerate(data.split(b"\n")):
            linenum = b"%d" % (i + 1)
            line = raw.strip(b" \t\r\n")
            if not line:
                continue
            argv = line.split(b" ")
            if argv[0] != b"user" or len(argv) < 2:
                errors += fname + b":" + linenum + b" should start with user keyword followed by the username. "
                continue
            if has_spaces(argv[1]):
                errors += (b"'" + fname + b":" + linenum + b": username '" + argv[1]
                           + b"' contains invalid characters. ")
                continue
            if argv[1] in new:
                errors += b"WARNING: Duplicate user '" + argv[1] + b"' found on line " + linenum + b". "
                continue
            u = new[argv[1]] = User(argv[1], pd)
            ops, _ = merge_selector_args(argv[2:])
            if ops is None:
                errors += fname + b":" + linenum + b": Unmatched parenthesis in selector definition."
                ops = []
            syntax_error = False
            for op in ops:
                op = op.strip(b"\t\r\n")
                try:
                    u.apply(op, pd)
                except AclError as e:
                    if e.reason == ENOENT:
                        errors += (fname + b":" + linenum + b": Error in applying operation '" + op + b"': "
                                   + e.reason.encode() + b". ")
                    elif not syntax_error:
                        errors += fname + b":" + linenum + b": " + e.reason.encode() + b". "
                        syntax_error = True
        if errors:
            errors += b"WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
            return errors.decode("utf-8", "surrogateescape")
        new_default = new.get(b"default")
        if new_default is None:
            new_default = User(b"default", 0)
            for op in (b"+@all", b"~*", b"&*", b"on", b"nopass"):
                new_default.apply(op, 0)
        self.default.copy_from(new_default)
        new[b"default"] = self.default
        old = self.users
        self.users = new
        for name in old:
            if name != b"default":
                self._kill_clients_of(current, name)
        self.changed()
        return None

    def save_file(self, filename: str) -> bool:
        """ACLSaveToFile: write a temp file, rename it over the ACL file."""
        content = b"".join(b"user " + line + b"\n" for line in self.list_lines())
        tmp = f"{filename}.tmp-{os.getpid()}-{mstime()}"
        log = self.srv.log
        fd = -1
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o644)
            except OSError as e:
                log.warning(f"Opening temp ACL file for ACL SAVE: {os.strerror(e.errno or 0)}")
                return False
            try:
                if os.write(fd, content) != len(content):
                    raise OSError(0, "short write")
            except OSError as e:
                log.warning(f"Writing ACL file for ACL SAVE: {os.strerror(e.errno or 0)}")
                return False
            os.close(fd)
            fd = -1
            try:
                os.rename(tmp, filename)
            except OSError as e:
                log.warning(f"Renaming ACL file for ACL SAVE: {os.strerror(e.errno or 0)}")
                return False
            tmp = ""
            return True
        finally:
            if fd != -1:
                os.close(fd)
            if tmp:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def load_configured_users(self, users: list[list[bytes]]) -> bool:
        """ACLLoadConfiguredUsers: the ``user`` directives of the config; False
        (after logging why) on a rule that does not apply."""
        log = self.srv.log
        pd = self.pubsub_default()
        for entry in users:
            name = entry[0]
            if has_spaces(name):
                log.warning("Spaces not allowed in ACL usernames")
                return False
            u = self.users.get(name)
            if u is None:
                u = self.users[name] = User(name, pd)
            else:
                u.apply(b"reset", pd)
            ops, _ = merge_selector_args(entry[1:])
            for op in ops or []:
                try:
                    u.apply(op, pd)
                except AclError as e:
                    log.warning(f"Error loading ACL rule '{_text(op)}' for the user named '{_text(name)}': "
                                f"{e.reason}")
                    return False
            if u.flags & USER_DISABLED:
                log.notice(f"The user '{_text(name)}' is disabled (there is no 'on' modifier in the user "
                           "description). Make sure this is not a configuration error.")
        self.changed()
        return True

    def load_at_startup(self) -> None:
        """ACLLoadUsersAtStartup: config ``user`` lines or the ACL file, never
        both; any error ends the process (exit code 1), as in Redis."""
        cfg = self.srv.cfg
        log = self.srv.log
        users = [[a.encode("utf-8", "surrogateescape") for a in u] for u in cfg.users]
        if cfg.aclfile and users:
            log.warning(
                "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is "
                "invalid. This setup is very likely to lead to configuration errors and security holes, please "
                "define either an ACL file or declare users directly in your redis.conf, but not both."
            )
            raise SystemExit(1)
        if not self.load_configured_users(users):
            log.warning("Critical error while loading ACLs. Exiting.")
            raise SystemExit(1)
        if cfg.aclfile:
            err = self.load_file(None, cfg.aclfile)
            if err is not None:
                log.warning(f"Aborting Redis startup because of ACL errors: {err}")
                raise SystemExit(1)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def validate_user_directive(argv: list[str], known: list[list[str]]) -> tuple[int, str] | None:
    """ACLAppendUserForLoading, for Config.validate_user: a ``user`` line of
    the config is checked on a scratch user; None when it is fine, else
    (index into ``argv`` Redis names in its error, reason).  Unknown commands
    are accepted here (Redis reports them when the users are loaded).  The
    index is Redis's: the rule's position among the rules, not in the line."""
    if len(argv) < 2 or argv[0].lower() != "user":
        return 0, EINVAL
    if any(u and u[0] == argv[1] for u in known):
        return 1, EALREADY
    args = [a.encode("utf-8", "surrogateescape") for a in argv[2:]]
    ops, bad = merge_selector_args(args)
    if ops is None:
        # Redis reports errno left over from earlier calls here; ENOENT is
        # what 7.0.15 shows in practice.
        return bad, ENOENT
    scratch = User(b"", 0)
    for j, op in enumerate(ops):
        try:
            scratch.apply(op, 0)
        except AclError as e:
            if e.reason != ENOENT:
                return j, e.reason
    return None


def genpass(bits: int) -> bytes:
    """ACL GENPASS: ``(bits+3)/4`` random hex characters."""
    chars = (bits + 3) // 4
    return os.urandom((chars + 1) // 2).hex()[:chars].encode()
