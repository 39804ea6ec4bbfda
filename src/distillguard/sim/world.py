"""The simulated world's infrastructure: networks and addresses, clients, mail domains, identifiers.

Everything here is shared by legitimate and campaign actors alike. Identifiers come from one
generator, user agents and TLS fingerprints from one pool, networks from one table, so that no
value format or pool tells a campaign account apart from an honest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Crockford-style lower-case base32: no i, l, o, u, so ids read unambiguously.
_ID_ALPHABET = np.frombuffer(b"0123456789abcdefghjkmnpqrstvwxyz", dtype=np.uint8)


def weighted_index(rng: np.random.Generator, weights: tuple[float, ...] | list[float]) -> int:
    """Index drawn with probability proportional to `weights` (fast for the short lists used here)."""
    u = rng.random() * sum(weights)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return len(weights) - 1


class IdFactory:
    """Random-looking identifiers from a single generator, for every actor.

    Identifiers are drawn in blocks and handed out in order, so asking for them one at a time costs
    little; the sequence depends only on the generator and the order of requests.
    """

    _BLOCK = 4096

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._pool: dict[int, tuple[list[str], int]] = {}  # length -> (drawn ids, next unused)

    def _draw(self, n: int, length: int) -> list[str]:
        codes = self._rng.integers(0, 32, size=(n, length), dtype=np.uint8)
        return _ID_ALPHABET[codes].view(f"S{length}").ravel().astype(f"U{length}").tolist()

    def new(self, prefix: str, n: int, length: int = 16) -> list[str]:
        """`n` identifiers `prefix` + `length` base32 characters (80 bits at the default length)."""
        buf, pos = self._pool.get(length, ([], 0))
        if len(buf) - pos < n:
            buf, pos = buf[pos:] + self._draw(max(n - (len(buf) - pos), self._BLOCK), length), 0
        self._pool[length] = (buf, pos + n)
        return [prefix + s for s in buf[pos : pos + n]]

    def one(self, prefix: str, length: int = 16) -> str:
        return self.new(prefix, 1, length)[0]

    def hexes(self, n: int, nbytes: int = 16) -> list[str]:
        """Opaque hashes, e.g. payment-instrument fingerprints."""
        raw = self._rng.bytes(n * nbytes)
        return [raw[i * nbytes : (i + 1) * nbytes].hex() for i in range(n)]


# Country -> (UTC offsets in minutes to choose from, weight in the general user population).
COUNTRIES: dict[str, tuple[tuple[int, ...], float]] = {
    "US": ((-300, -360, -480, -420), 30.0),
    "IN": ((330,), 10.0),
    "GB": ((0,), 6.0),
    "DE": ((60,), 6.0),
    "FR": ((60,), 4.0),
    "CA": ((-300, -480), 4.0),
    "JP": ((540,), 4.0),
    "BR": ((-180,), 4.0),
    "KR": ((540,), 3.0),
    "AU": ((600,), 3.0),
    "NL": ((60,), 2.0),
    "ES": ((60,), 2.0),
    "IT": ((60,), 2.0),
    "PL": ((60,), 2.0),
    "SG": ((480,), 2.0),
    "MX": ((-360,), 2.0),
    "ID": ((420,), 2.0),
    "TR": ((180,), 1.5),
    "VN": ((420,), 1.5),
    "TW": ((480,), 1.0),
    "HK": ((480,), 1.0),
    "IL": ((120,), 1.0),
    "SE": ((60,), 1.0),
    "CH": ((60,), 1.0),
    "NG": ((60,), 1.0),
    "ZA": ((120,), 1.0),
    "AE": ((240,), 1.0),
}

# Real autonomous systems, by kind. Address blocks inside them are synthetic (drawn per seed).
_RESIDENTIAL: tuple[tuple[int, str], ...] = (
    (7922, "US"), (7018, "US"), (701, "US"), (20115, "US"), (22773, "US"), (209, "US"),
    (812, "CA"), (577, "CA"), (852, "CA"), (2856, "GB"), (5089, "GB"), (5607, "GB"),
    (3320, "DE"), (3209, "DE"), (6805, "DE"), (3215, "FR"), (12322, "FR"), (5410, "FR"),
    (1136, "NL"), (33915, "NL"), (3352, "ES"), (3269, "IT"), (5617, "PL"), (3301, "SE"),
    (3303, "CH"), (55836, "IN"), (9498, "IN"), (24560, "IN"), (4713, "JP"), (2516, "JP"),
    (17676, "JP"), (4766, "KR"), (9318, "KR"), (7473, "SG"), (55430, "SG"), (1221, "AU"),
    (4804, "AU"), (28573, "BR"), (26599, "BR"), (8151, "MX"), (7713, "ID"), (7552, "VN"),
    (3462, "TW"), (4760, "HK"), (8551, "IL"), (9121, "TR"), (29465, "NG"), (37457, "ZA"),
    (5384, "AE"),
)
_MOBILE: tuple[tuple[int, str], ...] = (
    (21928, "US"), (22394, "US"), (12576, "GB"), (45609, "IN"), (9644, "KR"), (26615, "BR"),
    (3209, "DE"), (10030, "JP"),
)
_DATACENTER: tuple[tuple[int, str], ...] = (
    (16509, "US"), (16509, "IE"), (16509, "DE"), (16509, "SG"), (16509, "JP"), (15169, "US"),
    (396982, "US"), (396982, "NL"), (396982, "SG"), (8075, "US"), (8075, "NL"), (8075, "IE"),
    (14061, "US"), (14061, "NL"), (14061, "DE"), (14061, "SG"), (14061, "GB"), (16276, "FR"),
    (16276, "CA"), (16276, "DE"), (24940, "DE"), (24940, "FI"), (63949, "US"), (63949, "DE"),
    (63949, "SG"), (63949, "JP"), (20473, "US"), (20473, "JP"), (20473, "SG"), (20473, "NL"),
    (31898, "US"), (45102, "SG"), (132203, "HK"), (9009, "US"), (9009, "GB"), (60068, "NL"),
    (13335, "US"),
)
NETWORK_TABLES = (("residential", _RESIDENTIAL), ("mobile", _MOBILE), ("datacenter", _DATACENTER))
# Consumer VPN and privacy-relay egress, used by some ordinary users.
VPN_ASNS = (9009, 60068, 13335)

# First octets that hold public unicast space (excludes 0, 10, 100, 127, 169, 172, 192, 198, 203, 224+).
_PUBLIC_FIRST_OCTETS = tuple(
    o for o in range(1, 224) if o not in {0, 10, 100, 127, 169, 172, 192, 198, 203}
)


@dataclass(frozen=True, slots=True)
class Network:
    """One autonomous system's presence in one country, with synthetic /16 blocks."""

    asn: int
    country: str
    kind: str  # residential, mobile, datacenter, campus
    prefixes: tuple[int, ...]  # /16 prefixes as (first_octet << 8 | second_octet)
    v6: int | None  # a /32 IPv6 prefix as a 32-bit integer, when the network hands out v6


Address = tuple[str, int, str]  # (ip, asn, country)


def v4(block24: int, host: int) -> str:
    """The address `host` inside the /24 `block24` (a 24-bit integer)."""
    return f"{block24 >> 16}.{(block24 >> 8) & 255}.{block24 & 255}.{host}"


def v6(prefix32: int, low: int) -> str:
    """An address in the /32 `prefix32` with 96 low bits `low`, written in full hextets."""
    words = [prefix32 >> 16, prefix32 & 0xFFFF] + [(low >> s) & 0xFFFF for s in range(80, -1, -16)]
    return ":".join(f"{w:x}" for w in words)


# User agents, each with the TLS stack that produces its fingerprint, how the client sends the
# system prompt ("top" = Anthropic-style top-level field, "message" = leading system message),
# and its family.
@dataclass(frozen=True, slots=True)
class ClientKind:
    user_agent: str
    stack: str
    style: str
    family: str  # browser, sdk, http, agent


CLIENT_KINDS: tuple[ClientKind, ...] = (
    ClientKind("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36", "chrome", "message", "browser"),
    ClientKind("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36", "chrome", "message", "browser"),
    ClientKind("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15", "safari", "message", "browser"),
    ClientKind("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0", "firefox", "message", "browser"),
    ClientKind("Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0", "firefox", "message", "browser"),
    ClientKind("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36 Edg/133.0.0.0", "chrome", "message", "browser"),
    ClientKind("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1", "safari", "message", "browser"),
    ClientKind("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.6943.49 Mobile Safari/537.36", "chrome", "message", "browser"),
    ClientKind("OpenAI/Python 1.63.2", "python3", "message", "sdk"),
    ClientKind("OpenAI/Python 1.59.7", "python3", "message", "sdk"),
    ClientKind("OpenAI/JS 4.85.1", "node", "message", "sdk"),
    ClientKind("Anthropic/Python 0.45.2", "python3", "top", "sdk"),
    ClientKind("Anthropic/Python 0.42.0", "python3", "top", "sdk"),
    ClientKind("Anthropic/JS 0.37.0", "node", "top", "sdk"),
    ClientKind("python-requests/2.32.3", "python3", "message", "http"),
    ClientKind("python-httpx/0.28.1", "python3", "top", "http"),
    ClientKind("axios/1.7.9", "node", "message", "http"),
    ClientKind("Go-http-client/2.0", "go", "message", "http"),
    ClientKind("curl/8.5.0", "curl", "message", "http"),
    ClientKind("litellm/1.61.3", "python3", "message", "sdk"),
    ClientKind("aider/0.74.2", "python3", "message", "agent"),
    ClientKind("Cline/3.4.0", "node", "top", "agent"),
    ClientKind("Continue/0.9.260 (vscode)", "node", "message", "agent"),
    ClientKind("RooCode/3.7.0", "node", "top", "agent"),
    ClientKind("opencode/0.4.1", "bun", "top", "agent"),
)

# How many cipher suites / extensions each stack offers and its ALPN, for JA4-shaped strings.
_STACK_SHAPE: dict[str, tuple[int, int, str]] = {
    "chrome": (15, 16, "h2"),
    "safari": (20, 13, "h2"),
    "firefox": (17, 15, "h2"),
    "python3": (31, 13, "h1"),
    "node": (17, 12, "h2"),
    "go": (13, 11, "h2"),
    "curl": (30, 14, "h2"),
    "bun": (16, 12, "h2"),
}

FREE_MAIL: tuple[tuple[str, float], ...] = (
    ("gmail.com", 60.0), ("outlook.com", 9.0), ("hotmail.com", 6.0), ("yahoo.com", 6.0),
    ("icloud.com", 6.0), ("proton.me", 3.0), ("gmx.de", 1.5), ("web.de", 1.0), ("yahoo.co.jp", 1.0),
    ("naver.com", 1.5), ("qq.com", 0.5), ("mail.ru", 0.5), ("yandex.com", 0.5), ("aol.com", 1.0),
    ("zoho.com", 0.5), ("fastmail.com", 0.5),
)

_NAME_A = (
    "north", "bright", "blue", "silver", "cedar", "river", "stone", "quantum", "apex", "lumen",
    "harbor", "vertex", "pine", "iron", "nova", "summit", "atlas", "delta", "crest", "maple",
    "orbit", "pixel", "signal", "tandem", "willow", "zephyr", "copper", "prism", "kite", "arc",
)
_NAME_B = (
    "wind", "path", "field", "works", "labs", "data", "logic", "point", "forge", "bridge",
    "stack", "line", "wave", "grid", "mind", "loop", "craft", "scale", "base", "shift",
)
_TLDS = ("com", "io", "ai", "co", "dev", "net", "tech", "app")
_PLACES = (
    "westbrook", "lakemont", "fairhaven", "redmond-hill", "eastfield", "brightwater", "oakridge",
    "kingsbury", "millbrook", "ashford", "norwood", "riverside", "hollister", "granton", "belmont",
    "carrow", "denholm", "elmstead", "farnley", "glenmore",
)
_CAMPUS_SUFFIX = {
    "US": ".edu", "GB": ".ac.uk", "IN": ".ac.in", "DE": ".de", "JP": ".ac.jp", "KR": ".ac.kr",
    "CA": ".ca", "AU": ".edu.au", "BR": ".edu.br", "FR": ".fr", "SG": ".edu.sg", "NL": ".nl",
}


class World:
    """Shared infrastructure drawn once per seed."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        used: set[int] = set()
        self.networks: list[Network] = []
        for kind, table in NETWORK_TABLES:
            for asn, country in table:
                self.networks.append(self._network(asn, country, kind, used))
        self._by_kind_country: dict[tuple[str, str], list[Network]] = {}
        for net in self.networks:
            self._by_kind_country.setdefault((net.kind, net.country), []).append(net)
        self._used_prefixes = used
        self._used_asns = {n.asn for n in self.networks}
        self.stack_ja4 = {stack: self._ja4s(stack, 2) for stack in _STACK_SHAPE}
        self.country_names = list(COUNTRIES)
        weights = np.array([COUNTRIES[c][1] for c in self.country_names])
        self.country_p = weights / weights.sum()
        self._country_w = [COUNTRIES[c][1] for c in self.country_names]
        self._mail = [d for d, _ in FREE_MAIL]
        self._mail_w = [w for _, w in FREE_MAIL]

    # -- networks ---------------------------------------------------------------------------

    def _network(self, asn: int, country: str, kind: str, used: set[int]) -> Network:
        prefixes = []
        while len(prefixes) < (2 if kind == "campus" else 4):
            p = int(self._rng.choice(_PUBLIC_FIRST_OCTETS)) << 8 | int(self._rng.integers(0, 256))
            if p not in used:
                used.add(p)
                prefixes.append(p)
        has_v6 = kind in ("residential", "mobile") and self._rng.random() < 0.7
        v6_prefix = (0x2001 + int(self._rng.integers(0, 0xDFF))) << 16 | int(self._rng.integers(0, 0x10000))
        return Network(asn, country, kind, tuple(prefixes), v6_prefix if has_v6 else None)

    def campus_network(self, country: str) -> Network:
        """A new university network (its own AS) in `country`."""
        asn = int(self._rng.integers(1000, 64000))
        while asn in self._used_asns:
            asn = int(self._rng.integers(1000, 64000))
        self._used_asns.add(asn)
        return self._network(asn, country, "campus", self._used_prefixes)

    def networks_of(self, kind: str, country: str | None = None) -> list[Network]:
        if country is not None and (kind, country) in self._by_kind_country:
            return self._by_kind_country[(kind, country)]
        return [n for n in self.networks if n.kind == kind]

    def pick_network(self, rng: np.random.Generator, kind: str, country: str | None = None) -> Network:
        nets = self.networks_of(kind, country)
        return nets[int(rng.integers(len(nets)))]

    @staticmethod
    def block(rng: np.random.Generator, net: Network) -> int:
        """A random /24 inside `net`, as a 24-bit integer."""
        return net.prefixes[int(rng.integers(len(net.prefixes)))] << 8 | int(rng.integers(0, 256))

    def address(self, rng: np.random.Generator, net: Network, v6_share: float = 0.25) -> Address:
        """One client address in `net`: IPv6 for a share of dual-stack networks, else IPv4."""
        if net.v6 is not None and rng.random() < v6_share:
            low = int(rng.integers(0, 1 << 62)) << 34 | int(rng.integers(0, 1 << 34))
            return v6(net.v6, low), net.asn, net.country
        return v4(self.block(rng, net), int(rng.integers(1, 255))), net.asn, net.country

    @staticmethod
    def in_block(rng: np.random.Generator, net: Network, block24: int) -> Address:
        return v4(block24, int(rng.integers(1, 255))), net.asn, net.country

    # -- people -----------------------------------------------------------------------------

    def pick_country(self, rng: np.random.Generator, among: tuple[str, ...] | None = None) -> str:
        if among is None:
            return self.country_names[weighted_index(rng, self._country_w)]
        return among[int(rng.integers(len(among)))]

    @staticmethod
    def tz_minutes(rng: np.random.Generator, country: str) -> int:
        offsets = COUNTRIES.get(country, ((0,), 0.0))[0]
        return offsets[int(rng.integers(len(offsets)))]

    def free_mail(self, rng: np.random.Generator) -> str:
        return self._mail[weighted_index(rng, self._mail_w)]

    @staticmethod
    def company_domain(rng: np.random.Generator) -> str:
        a = _NAME_A[int(rng.integers(len(_NAME_A)))]
        b = _NAME_B[int(rng.integers(len(_NAME_B)))]
        sep = "-" if rng.random() < 0.25 else ""
        return f"{a}{sep}{b}.{_TLDS[int(rng.integers(len(_TLDS)))]}"

    @staticmethod
    def company_name(domain: str) -> str:
        return domain.split(".")[0].replace("-", " ").title()

    @staticmethod
    def campus_domain(rng: np.random.Generator, country: str) -> str:
        place = _PLACES[int(rng.integers(len(_PLACES)))]
        suffix = _CAMPUS_SUFFIX.get(country, ".edu")
        return f"{'u-' if rng.random() < 0.5 else ''}{place}{suffix}"

    # -- clients ----------------------------------------------------------------------------

    def _ja4s(self, stack: str, n: int) -> tuple[str, ...]:
        return tuple(self.random_ja4(self._rng, stack) for _ in range(n))

    @staticmethod
    def random_ja4(rng: np.random.Generator, stack: str | None = None) -> str:
        """A JA4-shaped TLS client fingerprint; with no stack, an uncommon custom build."""
        if stack is None:
            ciphers, exts, alpn = int(rng.integers(8, 40)), int(rng.integers(8, 20)), ("h2", "h1")[int(rng.integers(2))]
        else:
            ciphers, exts, alpn = _STACK_SHAPE[stack]
        return f"t13d{ciphers:02d}{exts:02d}{alpn}_{rng.bytes(6).hex()}_{rng.bytes(6).hex()}"

    @cached_property
    def kinds_by_family(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, k in enumerate(CLIENT_KINDS):
            out.setdefault(k.family, []).append(i)
        return out

    def client(self, rng: np.random.Generator, families: dict[str, float], rare_tls: float = 0.0) -> tuple[int, str]:
        """(client kind index, TLS fingerprint) for a client drawn from `families` weights."""
        fams = list(families)
        fam = fams[weighted_index(rng, [families[f] for f in fams])]
        kind = self.kinds_by_family[fam][int(rng.integers(len(self.kinds_by_family[fam])))]
        return kind, self.tls_for(rng, kind, rare_tls)

    def tls_for(self, rng: np.random.Generator, kind: int, rare_tls: float = 0.0) -> str:
        if rng.random() < rare_tls:
            return self.random_ja4(rng)
        options = self.stack_ja4[CLIENT_KINDS[kind].stack]
        return options[int(rng.integers(len(options)))]


def kind_index(user_agent_prefix: str) -> int:
    """The client kind whose user agent starts with `user_agent_prefix` (first match)."""
    for i, k in enumerate(CLIENT_KINDS):
        if k.user_agent.startswith(user_agent_prefix):
            return i
    raise KeyError(user_agent_prefix)
