"""GEO: what tests/corpus/geo.txt cannot show.

* effects: GEOADD recorded as the ZADD it runs (lower-case ``zadd``, integer
  scores, its options as typed), store forms verbatim, no-ops and reads
  recording nothing;
* the geohash helpers (encode/decode, neighbours, cells) and the pqsort
  port on their own;
* a seeded random comparison with a real redis-server 7.0.15: clustered
  and world-wide points, every search shape, unit and option, unsorted
  orders, ties under COUNT, stored results, RESP2 and RESP3.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from ambry.server import geohash
from ambry.server.commands.geo import _cmp_asc, _Point, pqsort
from ambry.server.reply import Err
from conftest import InProcess, ServerProcess


def effects(ip: InProcess, *cmds: tuple[Any, ...]) -> list[list[bytes]]:
    sink = ip.record()
    for cmd in cmds:
        ip.call(*cmd)
    out = sink.commands
    if out and out[0] == [b"SELECT", b"0"]:
        out = out[1:]
    return out


def b(*xs: Any) -> list[bytes]:
    return [x if isinstance(x, bytes) else str(x).encode() for x in xs]


PALERMO = 3479099956230698
CATANIA = 3479447370796909


# -- effects ---------------------------------------------------------------------------


def test_geoadd_is_recorded_as_lowercase_zadd_with_integer_scores(inproc: InProcess) -> None:
    assert effects(
        inproc,
        ("GEOADD", "g", "13.361389", "38.115556", "Palermo"),
        ("geoadd", "g", "ch", "Nx", "15.087269", "37.502669", "Catania", "13.361389", "38.115556", "Palermo"),
    ) == [b("zadd", "g", PALERMO, "Palermo"), b("zadd", "g", "ch", "Nx", CATANIA, "Catania", PALERMO, "Palermo")]


def test_geoadd_that_changes_nothing_records_nothing(inproc: InProcess) -> None:
    inproc.call("GEOADD", "g", "13.361389", "38.115556", "Palermo")
    assert effects(
        inproc,
        ("GEOADD", "g", "13.361389", "38.115556", "Palermo"),
        ("GEOADD", "g", "NX", "1", "1", "Palermo"),
        ("GEOADD", "g", "XX", "1", "1", "Nobody"),
        ("GEOADD", "g", "200", "1", "bad"),
    ) == []


def test_geo_store_forms_are_recorded_verbatim_and_reads_not_at_all(inproc: InProcess) -> None:
    inproc.call("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania")
    stores = [
        ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d1"),
        ("GEORADIUSBYMEMBER", "g", "Palermo", "300", "km", "STOREDIST", "d2"),
        ("GEOSEARCHSTORE", "d3", "g", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km"),
        ("GEOSEARCHSTORE", "d3", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ]
    reads = [
        ("GEORADIUS_RO", "g", "15", "37", "200", "km"),
        ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"),
        ("GEOPOS", "g", "Palermo"),
        ("GEODIST", "g", "Palermo", "Catania"),
        ("GEOHASH", "g", "Palermo"),
        ("GEOSEARCHSTORE", "nothere", "g", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"),
    ]
    assert effects(inproc, *stores, *reads) == [b(*c) for c in stores]
    assert inproc.call("EXISTS", "d3") == 0


def test_geoadd_errors_leave_the_key_alone(inproc: InProcess) -> None:
    assert inproc.call("GEOADD", "g", "1", "1", "a", "200", "1", "b") == Err(
        "ERR invalid longitude,latitude pair 200.000000,1.000000"
    )
    assert inproc.call("EXISTS", "g") == 0


# -- the geohash helpers ------------------------------------------------------------------


def test_encode_and_decode_round_trip_within_a_cell() -> None:
    bits = geohash.encode_wgs84(13.361389, 38.115556)
    assert bits is not None and geohash.align52(bits, 26) == PALERMO
    lon, lat = geohash.decode_score(float(PALERMO))
    assert abs(lon - 13.361389) < 1e-5 and abs(lat - 38.115556) < 1e-5
    rng = random.Random(1)
    for _ in range(500):
        lon = rng.uniform(-180, 180)
        lat = rng.uniform(geohash.GEO_LAT_MIN, geohash.GEO_LAT_MAX)
        bits = geohash.encode_wgs84(lon, lat)
        assert bits is not None
        area = geohash.decode_wgs84(bits, 26)
        assert area is not None
        assert area.lon_min <= lon <= area.lon_max and area.lat_min <= lat <= area.lat_max


def test_encode_refuses_out_of_range_points() -> None:
    assert geohash.encode_wgs84(180.1, 0) is None
    assert geohash.encode_wgs84(0, 85.06) is None
    assert geohash.encode_wgs84(0, 0, 0) is None


def test_neighbours_are_the_adjacent_cells_and_wrap_in_longitude() -> None:
    step = 4
    bits = geohash.encode_wgs84(10, 10, step)
    assert bits is not None
    nb = geohash.neighbors(bits, step)
    here = geohash.decode_wgs84(bits, step)
    north = geohash.decode_wgs84(nb.north, step)
    east = geohash.decode_wgs84(nb.east, step)
    assert here and north and east
    assert north.lat_min == here.lat_max and north.lon_min == here.lon_min
    assert east.lon_min == here.lon_max and east.lat_min == here.lat_min
    edge = geohash.encode_wgs84(179.9, 0, step)
    assert edge is not None
    wrapped = geohash.decode_wgs84(geohash.neighbors(edge, step).east, step)
    assert wrapped is not None and wrapped.lon_min == -180.0


def test_search_cells_cover_the_shape() -> None:
    rng = random.Random(3)
    for _ in range(200):
        shape = geohash.Shape()
        shape.lon = rng.uniform(-170, 170)
        shape.lat = rng.uniform(-60, 60)
        shape.radius = rng.choice([100.0, 5000.0, 100000.0])
        cells = geohash.search_cells(shape)
        ranges = [geohash.cell_score_range(bits, step) for bits, step in cells]
        for _ in range(20):
            # a point inside the circle lies in one of the cells searched
            lon = shape.lon + rng.uniform(-1, 1) * shape.radius / 111000
            lat = shape.lat + rng.uniform(-1, 1) * shape.radius / 111000
            bits = geohash.encode_wgs84(lon, lat)
            if bits is None or shape.contains(*geohash.decode_score(float(geohash.align52(bits, 26)))) is None:
                continue
            score = geohash.align52(bits, 26)
            assert any(lo <= score < hi for lo, hi in ranges)


def test_pqsort_sorts_the_requested_prefix() -> None:
    rng = random.Random(5)
    for _ in range(300):
        n = rng.randrange(1, 120)
        pts = [_Point(0, 0, float(rng.randrange(30)), 0, b"%d" % i) for i in range(n)]
        k = rng.randrange(1, n + 1)
        arr = list(pts)
        pqsort(arr, _cmp_asc, 0, k - 1)
        assert sorted(p.member for p in arr) == sorted(p.member for p in pts)
        assert [p.dist for p in arr[:k]] == sorted(p.dist for p in pts)[:k]


# -- a random comparison with redis-server ---------------------------------------------------


def _point(rng: random.Random, center: tuple[float, float], spread: float) -> tuple[float, float]:
    if rng.random() < 0.2:
        return round(rng.uniform(-180, 180), 6), round(rng.uniform(-85.05, 85.05), 6)
    lon = max(-180.0, min(180.0, center[0] + rng.gauss(0, spread)))
    lat = max(-85.05, min(85.05, center[1] + rng.gauss(0, spread)))
    return round(lon, rng.choice([0, 2, 6])), round(lat, rng.choice([0, 2, 6]))


def _geo_session(server: ServerProcess, seed: int, resp3: bool) -> list[bytes]:
    rng = random.Random(seed)
    c = server.conn()
    out: list[bytes] = []
    try:
        if resp3:
            c.command("HELLO", "3")
        for _ in range(12):
            out.append(c.command("DEL", "g", "dst"))
            center = _point(rng, (0.0, 0.0), 90)
            spread = rng.choice([0.001, 0.05, 1, 10])
            n = rng.choice([3, 30, 150])
            args: list[Any] = []
            for i in range(n):
                args += [*_point(rng, center, spread), "m%d" % i]
            out.append(c.command("GEOADD", "g", *args))
            for _ in range(12):
                unit = rng.choice(["m", "km", "ft", "mi"])
                radius = rng.choice([1, 500, 20000, 300000, 3000000]) / {"m": 1, "km": 1000, "ft": 0.3048, "mi": 1609.34}[unit]
                opts: list[Any] = [o for o in ("WITHCOORD", "WITHDIST", "WITHHASH") if rng.random() < 0.4]
                if rng.random() < 0.5:
                    opts.append(rng.choice(["ASC", "DESC"]))
                if rng.random() < 0.5:
                    opts += ["COUNT", rng.choice([1, 3, 10])]
                    if rng.random() < 0.3:
                        opts.append("ANY")
                lon, lat = _point(rng, center, spread * 2)
                kind = rng.randrange(4)
                if kind == 0:
                    out.append(c.command("GEORADIUS", "g", lon, lat, round(radius, 3), unit, *opts))
                elif kind == 1:
                    out.append(c.command("GEORADIUSBYMEMBER", "g", "m%d" % rng.randrange(n), round(radius, 3), unit, *opts))
                elif kind == 2:
                    by = ["BYRADIUS", round(radius, 3), unit] if rng.random() < 0.5 else ["BYBOX", round(radius, 2), round(radius * 1.5, 2), unit]
                    out.append(c.command("GEOSEARCH", "g", "FROMLONLAT", lon, lat, *by, *opts))
                else:
                    plain = [o for o in opts if not str(o).startswith("WITH")]
                    if rng.random() < 0.5:
                        plain.append("STOREDIST")
                    by = ["BYRADIUS", round(radius, 3), unit] if rng.random() < 0.5 else ["BYBOX", round(radius, 2), round(radius, 2), unit]
                    out.append(c.command("GEOSEARCHSTORE", "dst", "g", "FROMLONLAT", lon, lat, *by, *plain))
                    out.append(c.command("ZRANGE", "dst", "0", "-1", "WITHSCORES"))
                    out.append(c.command("OBJECT", "ENCODING", "dst"))
            out.append(c.command("GEOPOS", "g", *["m%d" % i for i in range(min(n, 15))]))
            out.append(c.command("GEOHASH", "g", *["m%d" % i for i in range(min(n, 15))]))
            out.append(c.command("GEODIST", "g", "m0", "m%d" % (n - 1), "km"))
    finally:
        c.close()
    return out


@pytest.mark.parametrize("seed", [11, 12], ids=["resp2", "resp3"])
def test_random_geo_sessions_match_redis(redis: ServerProcess, ambry: ServerProcess, seed: int) -> None:
    resp3 = seed % 2 == 0
    mine = _geo_session(ambry, seed, resp3)
    theirs = _geo_session(redis, seed, resp3)
    diffs = [i for i, (x, y) in enumerate(zip(mine, theirs, strict=True)) if x != y]
    assert not diffs, f"first difference at reply {diffs[0]}: {mine[diffs[0]][:300]!r} != {theirs[diffs[0]][:300]!r}"
