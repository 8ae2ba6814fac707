"""GEO commands (geo.c of Redis 7.0.15) on top of sorted sets.

GEOADD GEOPOS GEODIST GEOHASH GEORADIUS GEORADIUS_RO GEORADIUSBYMEMBER
GEORADIUSBYMEMBER_RO GEOSEARCH GEOSEARCHSTORE.

A member's position is its zset score, the 52-bit geohash of
server/geohash.py.  GEOADD is ZADD with the coordinates turned into scores:
it runs ZADD's code and is recorded as ``zadd key [NX|XX] [CH] score member
...`` (lower-case name, integer scores), as Redis rewrites its argv.
Searches scan the 3x3 geohash cells around the centre in Redis's order, so
unsorted results come out in the same order; sorting uses a stable sort
where Redis uses glibc's qsort (a merge sort) and a port of Redis's
``pqsort`` where it sorts only the first COUNT results.  Distances are
``%.4f`` bulk strings; coordinates are ``ld2string`` human doubles (bulk in
RESP2, double in RESP3).  GEORADIUS STORE / GEOSEARCHSTORE are recorded
verbatim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import geohash
from ..args import ERR_NOT_INT, ERR_SYNTAX
from ..client import Client
from ..keyspace import WRONGTYPE
from ..protocol import string2ll
from ..registry import command
from ..reply import NULL_ARRAY, Double, Err
from ..util import string2d
from .zsets import NOTIFY_GENERIC, NOTIFY_ZSET, ZSetValue, _notify, _set_key, _zadd_generic

ERR_NOT_FLOAT = Err("ERR value is not a valid float")
ERR_UNIT = Err("ERR unsupported unit provided. please use M, KM, FT, MI")
ERR_DECODE_MEMBER = Err("ERR could not decode requested zset member")

RADIUS_COORDS = 1
RADIUS_MEMBER = 2
RADIUS_NOSTORE = 4
GEOSEARCH = 8
GEOSEARCHSTORE = 16

SORT_NONE = 0
SORT_ASC = 1
SORT_DESC = 2

_UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}


def _zset(v: Any) -> ZSetValue | None:
    if v is None:
        return None
    if type(v) is not ZSetValue:
        raise WRONGTYPE
    return v  # type: ignore[no-any-return]


def _lonlat(a: bytes, b: bytes) -> tuple[float, float]:
    """extractLongLatOrReply."""
    lon = string2d(a)
    if lon is None:
        raise ERR_NOT_FLOAT
    lat = string2d(b)
    if lat is None:
        raise ERR_NOT_FLOAT
    if (lon < geohash.GEO_LONG_MIN or lon > geohash.GEO_LONG_MAX
            or lat < geohash.GEO_LAT_MIN or lat > geohash.GEO_LAT_MAX):
        raise Err("ERR invalid longitude,latitude pair %f,%f" % (lon, lat))
    return lon, lat


def _unit(arg: bytes) -> float:
    """extractUnitOrReply: meters per unit."""
    u = _UNITS.get(arg.lower())
    if u is None:
        raise ERR_UNIT
    return u


def _distance(num: bytes, unit: bytes) -> tuple[float, float]:
    """extractDistanceOrReply: (radius, meters per unit)."""
    d = string2d(num)
    if d is None:
        raise Err("ERR need numeric radius")
    if d < 0:
        raise Err("ERR radius cannot be negative")
    return d, _unit(unit)


def _box(w: bytes, h: bytes, unit: bytes) -> tuple[float, float, float]:
    """extractBoxOrReply: (width, height, meters per unit)."""
    width = string2d(w)
    if width is None:
        raise Err("ERR need numeric width")
    height = string2d(h)
    if height is None:
        raise Err("ERR need numeric height")
    if height < 0 or width < 0:
        raise Err("ERR height or width cannot be negative")
    return width, height, _unit(unit)


def human_double(c: Client, x: float) -> Any:
    """addReplyHumanLongDouble: ``%.17Lf`` without trailing zeros, as a
    bulk string in RESP2 and a double in RESP3."""
    s = b"%.17f" % x
    if b"." in s:
        s = s.rstrip(b"0").rstrip(b".")
    if s == b"-0":
        s = b"0"
    return Double(x, s)


def _dist_text(d: float) -> bytes:
    """addReplyDoubleDistance: ``%.4f``."""
    return b"%.4f" % d


# -- GEOADD ------------------------------------------------------------------------------


@command("geoadd")
def geoadd(c: Client, argv: list[bytes]) -> Any:
    """GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD of
    52-bit geohash scores, recorded as that ZADD."""
    n = len(argv)
    longidx = 2
    xx = nx = False
    while longidx < n:
        opt = argv[longidx].lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt != b"ch":
            break
        longidx += 1
    if (n - longidx) % 3 or (xx and nx):
        raise ERR_SYNTAX
    zargv = [b"zadd", *argv[1:longidx]]
    for i in range(longidx, n, 3):
        lon, lat = _lonlat(argv[i], argv[i + 1])
        bits = geohash.encode_wgs84(lon, lat, geohash.GEO_STEP_MAX) or 0
        zargv.append(b"%d" % geohash.align52(bits, geohash.GEO_STEP_MAX))
        zargv.append(argv[i + 2])
    c.prop_argv = zargv
    return _zadd_generic(c, zargv, 0)


# -- GEOPOS / GEOHASH / GEODIST ------------------------------------------------------------


@command("geopos")
def geopos(c: Client, argv: list[bytes]) -> Any:
    """GEOPOS key member [...]: [lon, lat] per member, a null array when missing."""
    zobj = _zset(c.db.lookup_read(argv[1]))
    out: list[Any] = []
    scores = zobj.scores if zobj is not None else {}
    for m in argv[2:]:
        s = scores.get(m)
        xy = None if s is None else geohash.decode_score(s)
        if xy is None:
            out.append(NULL_ARRAY)
        else:
            out.append([human_double(c, xy[0]), human_double(c, xy[1])])
    return out


@command("geohash")
def geohash_cmd(c: Client, argv: list[bytes]) -> Any:
    """GEOHASH key member [...]: 11-character standard geohashes (the
    position re-encoded with latitudes -90..90), null when missing."""
    zobj = _zset(c.db.lookup_read(argv[1]))
    out: list[Any] = []
    scores = zobj.scores if zobj is not None else {}
    for m in argv[2:]:
        s = scores.get(m)
        xy = None if s is None else geohash.decode_score(s)
        out.append(None if xy is None else geohash.geohash_string(xy[0], xy[1]))
    return out


@command("geodist")
def geodist(c: Client, argv: list[bytes]) -> Any:
    """GEODIST key member1 member2 [M|KM|FT|MI]."""
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = _unit(argv[4])
    elif len(argv) > 5:
        raise ERR_SYNTAX
    zobj = _zset(c.db.lookup_read(argv[1]))
    if zobj is None:
        return None
    s1 = zobj.scores.get(argv[2])
    s2 = zobj.scores.get(argv[3])
    if s1 is None or s2 is None:
        return None
    a = geohash.decode_score(s1)
    b = geohash.decode_score(s2)
    if a is None or b is None:
        return None
    return _dist_text(geohash.get_distance(a[0], a[1], b[0], b[1]) / to_meter)


# -- searches ------------------------------------------------------------------------------


class _Point:
    """geoPoint: a search hit."""

    __slots__ = ("lon", "lat", "dist", "score", "member")

    def __init__(self, lon: float, lat: float, dist: float, score: float, member: bytes) -> None:
        self.lon = lon
        self.lat = lat
        self.dist = dist
        self.score = score
        self.member = member


def _points_in_shape(zobj: ZSetValue, shape: geohash.Shape, limit: int) -> list[_Point]:
    """membersOfAllNeighbors: each cell's score range [min, max), filtered
    by the shape; with ANY (``limit``) it stops once enough were found."""
    ga: list[_Point] = []
    sl = zobj.sl
    contains = shape.contains
    decode = geohash.decode_score
    for bits, step in geohash.search_cells(shape):
        if ga and limit and len(ga) >= limit:
            break
        mn, mx = geohash.cell_score_range(bits, step)
        lo = sl.bisect_left((float(mn),))
        hi = sl.bisect_left((float(mx),))
        if lo >= hi:
            continue
        for score, member in sl.islice(lo, hi):
            xy = decode(score)
            if xy is not None:
                d = contains(xy[0], xy[1])
                if d is not None:
                    ga.append(_Point(xy[0], xy[1], d, score, member))
            if ga and limit and len(ga) >= limit:
                break
    return ga


def _cmp_asc(a: _Point, b: _Point) -> int:
    return 1 if a.dist > b.dist else (0 if a.dist == b.dist else -1)


def _cmp_desc(a: _Point, b: _Point) -> int:
    return -_cmp_asc(a, b)


def pqsort(arr: list[Any], cmp: Callable[[Any, Any], int], lrange: int, rrange: int) -> None:
    """Redis's pqsort (pqsort.c, NetBSD's qsort limited to the elements
    that can land in [lrange, rrange]), on a list, in place.  Elements
    outside the range end up in an unspecified order -- the same one."""
    A = arr

    def swap(i: int, j: int) -> None:
        A[i], A[j] = A[j], A[i]

    def vecswap(i: int, j: int, n: int) -> None:
        for k in range(n):
            A[i + k], A[j + k] = A[j + k], A[i + k]

    def med3(i: int, j: int, k: int) -> int:
        if cmp(A[i], A[j]) < 0:
            return j if cmp(A[j], A[k]) < 0 else (k if cmp(A[i], A[k]) < 0 else i)
        return j if cmp(A[j], A[k]) > 0 else (i if cmp(A[i], A[k]) < 0 else k)

    def insertion(a: int, n: int) -> None:
        for pm in range(a + 1, a + n):
            pl = pm
            while pl > a and cmp(A[pl - 1], A[pl]) > 0:
                swap(pl, pl - 1)
                pl -= 1

    def run(a: int, n: int) -> None:
        while True:
            if n < 7:
                insertion(a, n)
                return
            pm = a + n // 2
            if n > 7:
                pl = a
                pn = a + n - 1
                if n > 40:
                    d = n // 8
                    pl = med3(pl, pl + d, pl + 2 * d)
                    pm = med3(pm - d, pm, pm + d)
                    pn = med3(pn - 2 * d, pn - d, pn)
                pm = med3(pl, pm, pn)
            swap(a, pm)
            pa = pb = a + 1
            pc = pd = a + n - 1
            while True:
                while pb <= pc:
                    r = cmp(A[pb], A[a])
                    if r > 0:
                        break
                    if r == 0:
                        swap(pa, pb)
                        pa += 1
                    pb += 1
                while pb <= pc:
                    r = cmp(A[pc], A[a])
                    if r < 0:
                        break
                    if r == 0:
                        swap(pc, pd)
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                swap(pb, pc)
                pb += 1
                pc -= 1
            pn = a + n
            r = min(pa - a, pb - pa)
            vecswap(a, pb - r, r)
            r = min(pd - pc, pn - pd - 1)
            vecswap(pb, pn - r, r)
            r = pb - pa
            if r > 1 and not (rrange < a or lrange > a + r - 1):
                run(a, r)
            r = pd - pc
            if r > 1:
                a = pn - r
                n = r
                if not (rrange < a or lrange > a + r - 1):
                    continue
            return

    run(0, len(A))


def _georadius_generic(c: Client, argv: list[bytes], src_idx: int, flags: int) -> Any:
    """georadiusGeneric: GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO], GEOSEARCH,
    GEOSEARCHSTORE -- parsing and checks in Redis's order (a missing source
    key still has its arguments parsed), then search, sort, reply or store."""
    db = c.db
    zobj = _zset(db.lookup_read(argv[src_idx]))
    shape = geohash.Shape()
    storekey: bytes | None = None
    storedist = False
    if flags & RADIUS_COORDS:
        base_args = 6
        shape.lon, shape.lat = _lonlat(argv[2], argv[3])
        shape.radius, shape.conversion = _distance(argv[4], argv[5])
    elif flags & RADIUS_MEMBER and zobj is None:
        base_args = 5
    elif flags & RADIUS_MEMBER:
        base_args = 5
        xy = _member_pos(zobj, argv[2])  # type: ignore[arg-type]
        shape.lon, shape.lat = xy
        shape.radius, shape.conversion = _distance(argv[3], argv[4])
    else:
        base_args = 2
        if flags & GEOSEARCHSTORE:
            base_args = 3
            storekey = argv[1]

    withdist = withhash = withcoords = False
    frommember = fromloc = byradius = bybox = False
    sort = SORT_NONE
    any_ = False
    count = 0
    n = len(argv)
    remaining = n - base_args
    i = 0
    while i < remaining:
        arg = argv[base_args + i].lower()
        if arg == b"withdist":
            withdist = True
        elif arg == b"withhash":
            withhash = True
        elif arg == b"withcoord":
            withcoords = True
        elif arg == b"any":
            any_ = True
        elif arg == b"asc":
            sort = SORT_ASC
        elif arg == b"desc":
            sort = SORT_DESC
        elif arg == b"count" and i + 1 < remaining:
            v = string2ll(argv[base_args + i + 1])
            if v is None:
                raise ERR_NOT_INT
            if v <= 0:
                raise Err("ERR COUNT must be > 0")
            count = v
            i += 1
        elif (arg == b"store" or arg == b"storedist") and i + 1 < remaining and not flags & (RADIUS_NOSTORE | GEOSEARCH):
            storekey = argv[base_args + i + 1]
            storedist = arg == b"storedist"
            i += 1
        elif arg == b"storedist" and flags & GEOSEARCH and flags & GEOSEARCHSTORE:
            storedist = True
        elif arg == b"frommember" and i + 1 < remaining and flags & GEOSEARCH and not fromloc:
            if zobj is not None:
                shape.lon, shape.lat = _member_pos(zobj, argv[base_args + i + 1])
            frommember = True
            i += 1
        elif arg == b"fromlonlat" and i + 2 < remaining and flags & GEOSEARCH and not frommember:
            shape.lon, shape.lat = _lonlat(argv[base_args + i + 1], argv[base_args + i + 2])
            fromloc = True
            i += 2
        elif arg == b"byradius" and i + 2 < remaining and flags & GEOSEARCH and not bybox:
            shape.radius, shape.conversion = _distance(argv[base_args + i + 1], argv[base_args + i + 2])
            shape.circle = True
            byradius = True
            i += 2
        elif arg == b"bybox" and i + 3 < remaining and flags & GEOSEARCH and not byradius:
            shape.width, shape.height, shape.conversion = _box(
                argv[base_args + i + 1], argv[base_args + i + 2], argv[base_args + i + 3]
            )
            shape.circle = False
            bybox = True
            i += 3
        else:
            raise ERR_SYNTAX
        i += 1

    if storekey is not None and (withdist or withhash or withcoords):
        what = "GEOSEARCHSTORE" if flags & GEOSEARCHSTORE else "STORE option in GEORADIUS"
        raise Err(f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    name = argv[0].decode("latin-1")
    if flags & GEOSEARCH and not (frommember or fromloc):
        raise Err(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & GEOSEARCH and not (byradius or bybox):
        raise Err(f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")
    if any_ and not count:
        raise Err("ERR the ANY argument requires COUNT argument")

    srv = c.srv
    if zobj is None:
        if storekey is not None:
            if db.delete(storekey):
                _notify(srv, NOTIFY_GENERIC, b"del", storekey, db.id)
                srv.dirty += 1
            return 0
        return []

    if count and sort == SORT_NONE and not any_:
        sort = SORT_ASC
    ga = _points_in_shape(zobj, shape, count if any_ else 0)
    if not ga and storekey is None:
        return []
    result_length = len(ga)
    returned = result_length if count == 0 or result_length < count else count
    if sort != SORT_NONE:
        if returned == result_length:
            ga.sort(key=lambda p: p.dist, reverse=sort == SORT_DESC)
        else:
            pqsort(ga, _cmp_asc if sort == SORT_ASC else _cmp_desc, 0, returned - 1)
    conv = shape.conversion

    if storekey is None:
        out: list[Any] = []
        opts = withdist or withhash or withcoords
        for p in ga[:returned]:
            dist = p.dist / conv
            if not opts:
                out.append(p.member)
                continue
            item: list[Any] = [p.member]
            if withdist:
                item.append(_dist_text(dist))
            if withhash:
                item.append(int(p.score))
            if withcoords:
                item.append([human_double(c, p.lon), human_double(c, p.lat)])
            out.append(item)
        return out

    if returned:
        pairs = [(p.member, p.dist / conv if storedist else p.score) for p in ga[:returned]]
        dst = ZSetValue.from_pairs(pairs, False)
        cfg = srv.cfg
        dst.maybe_to_listpack(cfg.zset_max_listpack_entries, cfg.zset_max_listpack_value)
        _set_key(db, storekey, dst)
        event = b"geosearchstore" if flags & GEOSEARCH else b"georadiusstore"
        _notify(srv, NOTIFY_ZSET, event, storekey, db.id)
        srv.dirty += returned
    elif db.delete(storekey):
        _notify(srv, NOTIFY_GENERIC, b"del", storekey, db.id)
        srv.dirty += 1
    return returned


def _member_pos(zobj: ZSetValue, member: bytes) -> tuple[float, float]:
    """longLatFromMember."""
    s = zobj.scores.get(member)
    xy = None if s is None else geohash.decode_score(s)
    if xy is None:
        raise ERR_DECODE_MEMBER
    return xy


@command("georadius")
def georadius(c: Client, argv: list[bytes]) -> Any:
    """GEORADIUS key lon lat radius unit [WITHCOORD] [WITHDIST] [WITHHASH]
    [COUNT n [ANY]] [ASC|DESC] [STORE key|STOREDIST key]."""
    return _georadius_generic(c, argv, 1, RADIUS_COORDS)


@command("georadius_ro")
def georadius_ro(c: Client, argv: list[bytes]) -> Any:
    """GEORADIUS_RO: GEORADIUS without STORE."""
    return _georadius_generic(c, argv, 1, RADIUS_COORDS | RADIUS_NOSTORE)


@command("georadiusbymember")
def georadiusbymember(c: Client, argv: list[bytes]) -> Any:
    """GEORADIUSBYMEMBER key member radius unit [...]."""
    return _georadius_generic(c, argv, 1, RADIUS_MEMBER)


@command("georadiusbymember_ro")
def georadiusbymember_ro(c: Client, argv: list[bytes]) -> Any:
    """GEORADIUSBYMEMBER_RO: GEORADIUSBYMEMBER without STORE."""
    return _georadius_generic(c, argv, 1, RADIUS_MEMBER | RADIUS_NOSTORE)


@command("geosearch")
def geosearch(c: Client, argv: list[bytes]) -> Any:
    """GEOSEARCH key FROMMEMBER m|FROMLONLAT lon lat BYRADIUS r unit|BYBOX
    w h unit [ASC|DESC] [COUNT n [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]."""
    return _georadius_generic(c, argv, 1, GEOSEARCH)


@command("geosearchstore")
def geosearchstore(c: Client, argv: list[bytes]) -> Any:
    """GEOSEARCHSTORE dst src ... [STOREDIST]."""
    return _georadius_generic(c, argv, 2, GEOSEARCH | GEOSEARCHSTORE)
