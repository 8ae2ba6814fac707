"""Redis's geohash (geohash.c, geohash_helper.c of Redis 7.0.15).

A position is a 52-bit integer score: 26 bits of longitude in
[-180, 180] and 26 bits of latitude in [-85.05112878, 85.05112878]
(EPSG:3857's limits), interleaved with latitude on the even bits.  A radius
or box search looks at the 3x3 grid of geohash cells around the centre at a
precision (step) estimated from the radius, drops the cells the search area
cannot reach, and filters each cell's score range by real distance.

Everything is done in the same double-precision operations, in the same
order, as the C code, so scores, decoded coordinates, distances and the
cells (hence the unsorted result order) match Redis bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

GEO_LAT_MIN = -85.05112878
GEO_LAT_MAX = 85.05112878
GEO_LONG_MIN = -180.0
GEO_LONG_MAX = 180.0
GEO_STEP_MAX = 26

D_R = math.pi / 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37

_M64 = (1 << 64) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA

_sin = math.sin
_cos = math.cos
_asin = math.asin
_sqrt = math.sqrt


def _spread(v: int) -> int:
    """The bits of a 32-bit value moved to the even positions of 64."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


def _squash(v: int) -> int:
    """The even bits of a 64-bit value packed into 32 (deinterleave64's half)."""
    v &= 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0x00000000FFFFFFFF


def interleave64(xlo: int, ylo: int) -> int:
    """x on the even bits, y on the odd bits."""
    return _spread(xlo) | (_spread(ylo) << 1)


class Area(NamedTuple):
    """GeoHashArea: the cell's latitude and longitude bounds."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def encode(lon_min: float, lon_max: float, lat_min: float, lat_max: float,
           longitude: float, latitude: float, step: int) -> int | None:
    """geohashEncode: the ``2*step``-bit hash of a point (None outside the
    ranges or the EPSG:3857 limits)."""
    if step > 32 or step == 0:
        return None
    if (longitude > GEO_LONG_MAX or longitude < GEO_LONG_MIN
            or latitude > GEO_LAT_MAX or latitude < GEO_LAT_MIN):
        return None
    if latitude < lat_min or latitude > lat_max or longitude < lon_min or longitude > lon_max:
        return None
    lat_offset = (latitude - lat_min) / (lat_max - lat_min)
    long_offset = (longitude - lon_min) / (lon_max - lon_min)
    lat_offset *= 1 << step
    long_offset *= 1 << step
    return interleave64(int(lat_offset), int(long_offset))


def encode_wgs84(longitude: float, latitude: float, step: int = GEO_STEP_MAX) -> int | None:
    return encode(GEO_LONG_MIN, GEO_LONG_MAX, GEO_LAT_MIN, GEO_LAT_MAX, longitude, latitude, step)


def align52(bits: int, step: int) -> int:
    """geohashAlign52Bits."""
    return (bits << (52 - step * 2)) & _M64


def decode(lon_min: float, lon_max: float, lat_min: float, lat_max: float, bits: int, step: int) -> Area | None:
    """geohashDecode: the cell of a hash (None for the zero hash of step 0)."""
    if bits == 0 and step == 0:
        return None
    ilato = _squash(bits)
    ilono = _squash(bits >> 1)
    lat_scale = lat_max - lat_min
    long_scale = lon_max - lon_min
    div = float(1 << step)
    return Area(
        lat_min + (ilato * 1.0 / div) * lat_scale,
        lat_min + (((ilato + 1) & 0xFFFFFFFF) * 1.0 / div) * lat_scale,
        lon_min + (ilono * 1.0 / div) * long_scale,
        lon_min + (((ilono + 1) & 0xFFFFFFFF) * 1.0 / div) * long_scale,
    )


def decode_wgs84(bits: int, step: int) -> Area | None:
    return decode(GEO_LONG_MIN, GEO_LONG_MAX, GEO_LAT_MIN, GEO_LAT_MAX, bits, step)


def score_to_bits(score: float) -> int:
    """``(uint64_t)score`` as x86-64 code computes it (scores that are not
    geohashes still decode to something, as in Redis)."""
    if score != score or score in (math.inf, -math.inf):
        return 0 if score != -math.inf else 0x8000000000000000
    if score < 9223372036854775808.0:
        if score <= -9223372036854775809.0:
            return 0x8000000000000000
        return int(score) & _M64
    if score < 18446744073709551616.0:
        return int(score)
    return 0


def decode_score(score: float) -> tuple[float, float] | None:
    """decodeGeohash: a zset score to (longitude, latitude), the centre of
    its step-26 cell clamped to the valid ranges."""
    area = decode_wgs84(score_to_bits(score), GEO_STEP_MAX)
    if area is None:
        return None
    lon = (area.lon_min + area.lon_max) / 2
    if lon > GEO_LONG_MAX:
        lon = GEO_LONG_MAX
    if lon < GEO_LONG_MIN:
        lon = GEO_LONG_MIN
    lat = (area.lat_min + area.lat_max) / 2
    if lat > GEO_LAT_MAX:
        lat = GEO_LAT_MAX
    if lat < GEO_LAT_MIN:
        lat = GEO_LAT_MIN
    return lon, lat


def _move_x(bits: int, step: int, d: int) -> int:
    x = bits & _ODD
    y = bits & _EVEN
    zz = _EVEN >> (64 - step * 2)
    if d > 0:
        x = (x + (zz + 1)) & _M64
    else:
        x = x | zz
        x = (x - (zz + 1)) & _M64
    x &= _ODD >> (64 - step * 2)
    return x | y


def _move_y(bits: int, step: int, d: int) -> int:
    x = bits & _ODD
    y = bits & _EVEN
    zz = _ODD >> (64 - step * 2)
    if d > 0:
        y = (y + (zz + 1)) & _M64
    else:
        y = y | zz
        y = (y - (zz + 1)) & _M64
    y &= _EVEN >> (64 - step * 2)
    return x | y


class Neighbors(NamedTuple):
    north: int
    south: int
    east: int
    west: int
    north_east: int
    north_west: int
    south_east: int
    south_west: int


def neighbors(bits: int, step: int) -> Neighbors:
    """geohashNeighbors: the eight cells around ``bits`` at ``step``."""
    east = _move_x(bits, step, 1)
    west = _move_x(bits, step, -1)
    return Neighbors(
        north=_move_y(bits, step, 1),
        south=_move_y(bits, step, -1),
        east=east,
        west=west,
        north_east=_move_y(east, step, 1),
        north_west=_move_y(west, step, 1),
        south_east=_move_y(east, step, -1),
        south_west=_move_y(west, step, -1),
    )


def deg_rad(ang: float) -> float:
    return ang * D_R


def rad_deg(ang: float) -> float:
    return ang / D_R


def estimate_steps_by_radius(range_meters: float, lat: float) -> int:
    """geohashEstimateStepsByRadius."""
    if range_meters == 0:
        return 26
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    if step < 1:
        step = 1
    if step > 26:
        step = 26
    return step


def get_distance(lon1d: float, lat1d: float, lon2d: float, lat2d: float) -> float:
    """geohashGetDistance: haversine on a sphere of radius 6372797.560856 m."""
    lat1r = lat1d * D_R
    lon1r = lon1d * D_R
    lat2r = lat2d * D_R
    lon2r = lon2d * D_R
    u = _sin((lat2r - lat1r) / 2)
    v = _sin((lon2r - lon1r) / 2)
    return 2.0 * EARTH_RADIUS_IN_METERS * _asin(_sqrt(u * u + _cos(lat1r) * _cos(lat2r) * v * v))


class Shape:
    """GeoShape: a circle (radius) or a box (width, height) around ``xy``,
    sizes in ``conversion`` units (meters per unit)."""

    __slots__ = ("circle", "lon", "lat", "radius", "width", "height", "conversion")

    def __init__(self) -> None:
        self.circle = True
        self.lon = 0.0
        self.lat = 0.0
        self.radius = 0.0
        self.width = 0.0
        self.height = 0.0
        self.conversion = 1.0

    def bounding_box(self) -> tuple[float, float, float, float]:
        """geohashBoundingBox: (min lon, min lat, max lon, max lat); the
        longitude span is taken at the edge farther from the equator."""
        conv = self.conversion
        if self.circle:
            height = conv * self.radius
            width = conv * self.radius
        else:
            height = conv * (self.height / 2)
            width = conv * (self.width / 2)
        longitude = self.lon
        latitude = self.lat
        lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS)
        long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / _cos(deg_rad(latitude + lat_delta)))
        long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / _cos(deg_rad(latitude - lat_delta)))
        southern = latitude < 0
        min_lon = longitude - long_delta_bottom if southern else longitude - long_delta_top
        max_lon = longitude + long_delta_bottom if southern else longitude + long_delta_top
        return min_lon, latitude - lat_delta, max_lon, latitude + lat_delta

    def contains(self, lon: float, lat: float) -> float | None:
        """geoWithinShape's test: the distance to the centre, or None."""
        conv = self.conversion
        if self.circle:
            d = get_distance(self.lon, self.lat, lon, lat)
            return None if d > self.radius * conv else d
        lon_distance = get_distance(lon, lat, self.lon, lat)
        lat_distance = get_distance(lon, lat, lon, self.lat)
        if lon_distance > self.width * conv / 2 or lat_distance > self.height * conv / 2:
            return None
        return get_distance(self.lon, self.lat, lon, lat)


def search_cells(shape: Shape) -> list[tuple[int, int]]:
    """geohashCalculateAreasByShapeWGS84 + membersOfAllNeighbors' order:
    the (bits, step) cells to scan -- centre, N, S, E, W, NE, NW, SE, SW --
    without the cells excluded as useless and without a cell equal to the
    one processed just before it."""
    min_lon, min_lat, max_lon, max_lat = shape.bounding_box()
    longitude = shape.lon
    latitude = shape.lat
    if shape.circle:
        radius_meters = shape.radius
    else:
        radius_meters = _sqrt((shape.width / 2) * (shape.width / 2) + (shape.height / 2) * (shape.height / 2))
    radius_meters *= shape.conversion

    steps = estimate_steps_by_radius(radius_meters, latitude)
    bits = encode_wgs84(longitude, latitude, steps) or 0
    nb = neighbors(bits, steps)
    area = decode_wgs84(bits, steps)

    north = decode_wgs84(nb.north, steps)
    south = decode_wgs84(nb.south, steps)
    east = decode_wgs84(nb.east, steps)
    west = decode_wgs84(nb.west, steps)
    decrease = bool(
        (north is not None and north.lat_max < max_lat)
        or (south is not None and south.lat_min > min_lat)
        or (east is not None and east.lon_max < max_lon)
        or (west is not None and west.lon_min > min_lon)
    )
    if steps > 1 and decrease:
        steps -= 1
        bits = encode_wgs84(longitude, latitude, steps) or 0
        nb = neighbors(bits, steps)
        area = decode_wgs84(bits, steps)

    cells: list[int | None] = [bits, nb.north, nb.south, nb.east, nb.west,
                               nb.north_east, nb.north_west, nb.south_east, nb.south_west]
    if steps >= 2 and area is not None:
        # GZERO: indexes into ``cells`` of the neighbours that cannot matter
        if area.lat_min < min_lat:
            cells[2] = cells[8] = cells[7] = None
        if area.lat_max > max_lat:
            cells[1] = cells[5] = cells[6] = None
        if area.lon_min < min_lon:
            cells[4] = cells[8] = cells[6] = None
        if area.lon_max > max_lon:
            cells[3] = cells[7] = cells[5] = None
    out: list[tuple[int, int]] = []
    last = 0
    for i, cell in enumerate(cells):
        # GZERO leaves bits=0, step=0 (HASHISZERO); a real cell of bits 0
        # at step >= 1 is still searched.
        if cell is None:
            continue
        # "same as the previous one" is only checked once a neighbour (not
        # the centre, index 0) was processed: Redis tests last_processed != 0.
        if last and cell == cells[last]:
            continue
        out.append((cell, steps))
        last = i
    return out


def cell_score_range(bits: int, step: int) -> tuple[int, int]:
    """scoresOfGeoHashBox: [min, max) of the 52-bit scores inside a cell."""
    return align52(bits, step), align52(bits + 1, step)


GEOALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_string(lon: float, lat: float) -> bytes:
    """GEOHASH's 11-character standard geohash (latitude range -90..90),
    the last character always '0' since only 52 bits exist."""
    bits = encode(-180.0, 180.0, -90.0, 90.0, lon, lat, 26) or 0
    out = bytearray(11)
    for i in range(11):
        idx = 0 if i == 10 else (bits >> (52 - (i + 1) * 5)) & 0x1F
        out[i] = GEOALPHABET[idx]
    return bytes(out)
