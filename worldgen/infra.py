"""Network and client infrastructure: ASNs, IP addresses, user agents, TLS and payment fingerprints.

The ASN numbers and their owners are real; the IP prefixes given to each ASN are drawn per world (they
are plausible public ranges, not the real allocation). Common values (a carrier's CGNAT pool, a campus
NAT, the default SDK client) are deliberately shared by many accounts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from dataclasses import dataclass

import numpy as np

# country: (weight among legitimate users, UTC offset in hours, RIR for v6 prefixes)
COUNTRIES: dict[str, tuple[float, float, str]] = {
    "US": (30, -6, "arin"),
    "IN": (8, 5.5, "apnic"),
    "GB": (5, 0, "ripe"),
    "DE": (5, 1, "ripe"),
    "BR": (4, -3, "lacnic"),
    "FR": (3, 1, "ripe"),
    "CA": (3, -5, "arin"),
    "JP": (3, 9, "apnic"),
    "KR": (3, 9, "apnic"),
    "AU": (2, 10, "apnic"),
    "ES": (2, 1, "ripe"),
    "IT": (2, 1, "ripe"),
    "NL": (2, 1, "ripe"),
    "PL": (2, 1, "ripe"),
    "MX": (2, -6, "lacnic"),
    "ID": (2, 7, "apnic"),
    "TR": (1.5, 3, "ripe"),
    "VN": (1.5, 7, "apnic"),
    "PH": (1.5, 8, "apnic"),
    "NG": (1, 1, "afrinic"),
    "SG": (1, 8, "apnic"),
    "SE": (1, 1, "ripe"),
    "CH": (1, 1, "ripe"),
    "IL": (1, 2, "ripe"),
    "UA": (1, 2, "ripe"),
    "AR": (1, -3, "lacnic"),
    "ZA": (1, 2, "afrinic"),
    "EG": (1, 2, "afrinic"),
    "TW": (1, 8, "apnic"),
    "HK": (0.5, 8, "apnic"),
}

# (asn, country, kind) kind in residential, mobile, cloud, campus, vpn
ASNS: list[tuple[int, str, str]] = [
    (7922, "US", "residential"),
    (7018, "US", "residential"),
    (701, "US", "residential"),
    (20115, "US", "residential"),
    (22773, "US", "residential"),
    (21928, "US", "mobile"),
    (6167, "US", "mobile"),
    (24560, "IN", "residential"),
    (55836, "IN", "mobile"),
    (9829, "IN", "residential"),
    (2856, "GB", "residential"),
    (5089, "GB", "residential"),
    (5607, "GB", "residential"),
    (3320, "DE", "residential"),
    (3209, "DE", "residential"),
    (6805, "DE", "mobile"),
    (28573, "BR", "residential"),
    (18881, "BR", "mobile"),
    (3215, "FR", "residential"),
    (12322, "FR", "residential"),
    (812, "CA", "residential"),
    (577, "CA", "residential"),
    (2516, "JP", "residential"),
    (4713, "JP", "residential"),
    (17676, "JP", "mobile"),
    (4766, "KR", "residential"),
    (9318, "KR", "residential"),
    (1221, "AU", "residential"),
    (3352, "ES", "residential"),
    (3269, "IT", "residential"),
    (1136, "NL", "residential"),
    (33915, "NL", "residential"),
    (5617, "PL", "residential"),
    (8151, "MX", "residential"),
    (7713, "ID", "mobile"),
    (9121, "TR", "residential"),
    (7552, "VN", "mobile"),
    (9299, "PH", "residential"),
    (29465, "NG", "mobile"),
    (3758, "SG", "residential"),
    (3301, "SE", "residential"),
    (3303, "CH", "residential"),
    (8551, "IL", "residential"),
    (15895, "UA", "mobile"),
    (7303, "AR", "residential"),
    (37457, "ZA", "residential"),
    (8452, "EG", "residential"),
    (3462, "TW", "residential"),
    (4760, "HK", "residential"),
    (16509, "US", "cloud"),
    (14618, "US", "cloud"),
    (15169, "US", "cloud"),
    (396982, "US", "cloud"),
    (8075, "US", "cloud"),
    (14061, "US", "cloud"),
    (24940, "DE", "cloud"),
    (16276, "FR", "cloud"),
    (63949, "US", "cloud"),
    (20473, "US", "cloud"),
    (31898, "US", "cloud"),
    (45102, "SG", "cloud"),
    (132203, "HK", "cloud"),
    (16509, "SG", "cloud"),
    (16509, "JP", "cloud"),
    (13335, "US", "vpn"),
    (9009, "GB", "vpn"),
    (212238, "NL", "vpn"),
    (3, "US", "campus"),
    (32, "US", "campus"),
    (25, "US", "campus"),
    (88, "US", "campus"),
    (786, "GB", "campus"),
    (680, "DE", "campus"),
    (2200, "FR", "campus"),
    (1103, "NL", "campus"),
    (7575, "AU", "campus"),
    (2907, "JP", "campus"),
]

_V6_HEADS = {
    "arin": (0x2600, 0x2607),
    "ripe": (0x2A00, 0x2A0F),
    "apnic": (0x2400, 0x240F),
    "lacnic": (0x2800, 0x2804),
    "afrinic": (0x2C0F, 0x2C0F),
}
_V6_SHARE = {"residential": 0.3, "mobile": 0.45, "cloud": 0.08, "campus": 0.2, "vpn": 0.1}
_BAD_FIRST_OCTETS = {0, 10, 100, 127, 169, 172, 192, 198, 203, 224}


@dataclass(frozen=True, slots=True)
class Net:
    asn: int
    country: str
    kind: str
    v4_prefixes: tuple[int, ...]  # /16 network numbers as integers
    v6_prefix: int  # top 32 bits


@dataclass(frozen=True, slots=True)
class Addr:
    ip: str
    asn: int
    country: str


class NetTable:
    """The world's ASNs with prefixes, and helpers to draw addresses from them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.nets: list[Net] = []
        used: set[int] = set()
        for asn, country, kind in ASNS:
            n16 = {"residential": 6, "mobile": 3, "cloud": 8, "campus": 1, "vpn": 2}[kind]
            pfx: list[int] = []
            while len(pfx) < n16:
                first = int(rng.integers(1, 223))
                if first in _BAD_FIRST_OCTETS:
                    continue
                p = (first << 8) | int(rng.integers(0, 256))
                if p not in used:
                    used.add(p)
                    pfx.append(p)
            lo, hi = _V6_HEADS[COUNTRIES[country][2]]
            v6 = (int(rng.integers(lo, hi + 1)) << 16) | int(rng.integers(0, 1 << 16))
            self.nets.append(Net(asn, country, kind, tuple(pfx), v6))
        self.by_kind: dict[str, list[Net]] = {}
        self.by_country_kind: dict[tuple[str, str], list[Net]] = {}
        for n in self.nets:
            self.by_kind.setdefault(n.kind, []).append(n)
            self.by_country_kind.setdefault((n.country, n.kind), []).append(n)

    def pick(self, rng: random.Random, kind: str, country: str | None = None) -> Net:
        if country is not None:
            nets = self.by_country_kind.get((country, kind))
            if nets:
                return rng.choice(nets)
            if kind == "mobile":
                nets = self.by_country_kind.get((country, "residential"))
                if nets:
                    return rng.choice(nets)
        return rng.choice(self.by_kind[kind])

    def address(self, rng: random.Random, net: Net, v6: bool | None = None) -> Addr:
        if v6 is None:
            v6 = rng.random() < _V6_SHARE[net.kind]
        if v6:
            value = (net.v6_prefix << 96) | (rng.getrandbits(32) << 64) | rng.getrandbits(64)
            return Addr(str(ipaddress.IPv6Address(value)), net.asn, net.country)
        p = rng.choice(net.v4_prefixes)
        return Addr(f"{p >> 8}.{p & 255}.{rng.randrange(256)}.{rng.randrange(1, 255)}", net.asn, net.country)

    def subnet_address(self, rng: random.Random, base: Addr) -> Addr:
        """Another address in the same /24 (v4) or /64 (v6) as base: an office or campus block."""
        if ":" in base.ip:
            net = ipaddress.IPv6Network(f"{base.ip}/64", strict=False)
            return Addr(str(net[rng.getrandbits(64)]), base.asn, base.country)
        a, b, c, _ = base.ip.split(".")
        return Addr(f"{a}.{b}.{c}.{rng.randrange(1, 255)}", base.asn, base.country)


@dataclass(frozen=True, slots=True)
class Client:
    """An HTTP client: the user agent string and the TLS fingerprint its stack produces."""

    family: str
    user_agent: str
    tls: str
    sends_conversation_id: bool
    stream_prob: float


def ja3(label: str) -> str:
    return hashlib.md5(label.encode()).hexdigest()  # an opaque fingerprint, not a security use


# family: (user-agent templates, TLS stack label, version pool, sends conversation id, stream probability)
_CLIENT_FAMILIES: dict[str, tuple[tuple[str, ...], str, tuple[str, ...], bool, float]] = {
    "openai-python": (
        ("OpenAI/Python {v}",),
        "python-openssl-3.0",
        ("1.51.2", "1.54.4", "1.57.0", "1.59.7", "1.61.1"),
        False,
        0.3,
    ),
    "anthropic-python": (
        ("Anthropic/Python {v}",),
        "python-openssl-3.0",
        ("0.39.0", "0.42.0", "0.45.2", "0.49.0"),
        False,
        0.35,
    ),
    "openai-node": (("OpenAI/JS {v}",), "node-20", ("4.67.3", "4.73.1", "4.77.0", "4.85.1"), False, 0.5),
    "anthropic-node": (("Anthropic/JS {v}",), "node-20", ("0.32.1", "0.33.1", "0.36.3"), False, 0.5),
    "httpx": (("python-httpx/{v}",), "python-openssl-3.0", ("0.27.0", "0.27.2", "0.28.1"), False, 0.2),
    "requests": (("python-requests/{v}",), "python-openssl-1.1", ("2.31.0", "2.32.3"), False, 0.05),
    "aiohttp": (
        ("Python/3.11 aiohttp/{v}",),
        "python-openssl-3.0",
        ("3.9.5", "3.10.10", "3.11.11"),
        False,
        0.3,
    ),
    "curl": (("curl/{v}",), "curl-openssl", ("7.81.0", "8.5.0", "8.7.1", "8.11.1"), False, 0.1),
    "go": (("Go-http-client/2.0", "Go-http-client/1.1"), "go-1.22", ("",), False, 0.2),
    "axios": (("axios/{v}",), "node-18", ("1.6.8", "1.7.7", "1.7.9"), False, 0.2),
    "okhttp": (("okhttp/{v}",), "android-boringssl", ("4.12.0", "4.9.3"), True, 0.9),
    "ios-app": (
        ("ChatApp/{v} CFNetwork/1568.300.101 Darwin/24.2.0",),
        "ios-boringssl",
        ("3.12.1", "3.14.0", "3.15.2"),
        True,
        0.95,
    ),
    "chrome": (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36",
        ),
        "chrome",
        ("129", "130", "131", "132"),
        True,
        0.98,
    ),
    "firefox": (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
        ),
        "firefox",
        ("131", "132", "133"),
        True,
        0.98,
    ),
    "safari": (
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1",
        ),
        "safari",
        ("17.6", "18.1", "18.2"),
        True,
        0.98,
    ),
    "langchain": (
        ("langchain-openai/{v} OpenAI/Python 1.54.4",),
        "python-openssl-3.0",
        ("0.2.9", "0.2.14", "0.3.1"),
        False,
        0.4,
    ),
    "litellm": (("litellm/{v}",), "python-openssl-3.0", ("1.52.0", "1.55.3", "1.59.8"), False, 0.3),
    "coding-agent": (
        ("aider/{v}", "Cline/{v}", "continue/{v}", "opencode/{v}"),
        "node-20",
        ("0.9.1", "1.2.0", "3.1.4", "0.62.1"),
        True,
        0.9,
    ),
    "java": (("Java-http-client/{v}",), "java-17", ("17.0.9", "21.0.2"), False, 0.1),
}

# Browsers randomise extension order, so their JA3 varies per connection: give them many variants.
_TLS_VARIANTS = {"chrome": 10, "firefox": 3, "safari": 2}

CONSUMER_CLIENT_WEIGHTS = {
    "chrome": 40,
    "safari": 14,
    "firefox": 6,
    "ios-app": 10,
    "okhttp": 8,
    "openai-python": 8,
    "anthropic-python": 5,
    "requests": 3,
    "curl": 2,
    "openai-node": 4,
}
DEVELOPER_CLIENT_WEIGHTS = {
    "openai-python": 22,
    "anthropic-python": 18,
    "openai-node": 10,
    "anthropic-node": 6,
    "httpx": 8,
    "coding-agent": 18,
    "langchain": 6,
    "litellm": 5,
    "curl": 3,
    "requests": 4,
}
SERVER_CLIENT_WEIGHTS = {
    "openai-python": 25,
    "anthropic-python": 15,
    "openai-node": 15,
    "anthropic-node": 8,
    "httpx": 8,
    "java": 8,
    "go": 10,
    "axios": 6,
    "langchain": 5,
}


def make_client(rng: random.Random, family: str, tls_override: str | None = None) -> Client:
    uas, stack, versions, conv, stream = _CLIENT_FAMILIES[family]
    v = rng.choice(versions)
    ua = rng.choice(uas).format(v=v)
    if tls_override is not None:
        tls = tls_override
    else:
        variants = _TLS_VARIANTS.get(stack, 1)
        # Library clients present one fingerprint per TLS stack build; minor versions move it rarely.
        tls = ja3(
            f"{stack}:{rng.randrange(variants)}"
            if variants > 1
            else f"{stack}:{v[:3] if stack.startswith('python') else ''}"
        )
    return Client(family, ua, tls, conv, stream)


def browser_tls(rng: random.Random, client: Client) -> str:
    """A fresh per-connection JA3 for browsers (extension order randomisation)."""
    stack = _CLIENT_FAMILIES[client.family][1]
    variants = _TLS_VARIANTS.get(stack)
    if not variants:
        return client.tls
    return ja3(f"{stack}:{rng.randrange(variants)}")


def pick_family(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), list(weights.values()))[0]


def payment_fp(rng: random.Random) -> str:
    return f"pf_{rng.getrandbits(64):016x}"


CONSUMER_DOMAINS = {
    "gmail.com": 46,
    "outlook.com": 10,
    "hotmail.com": 6,
    "yahoo.com": 6,
    "icloud.com": 6,
    "proton.me": 2,
    "gmx.de": 1.5,
    "yandex.ru": 0.5,
    "naver.com": 1,
    "mail.com": 0.5,
}


def consumer_domain(rng: random.Random) -> str:
    return rng.choices(list(CONSUMER_DOMAINS), list(CONSUMER_DOMAINS.values()))[0]


_UNI_FIRST = (
    "north",
    "west",
    "east",
    "south",
    "lake",
    "river",
    "hill",
    "oak",
    "pine",
    "bay",
    "stone",
    "clear",
    "fair",
    "green",
)
_UNI_SECOND = ("field", "wood", "brook", "view", "ridge", "dale", "ford", "haven", "port", "mont", "crest")
_UNI_TLD = {"US": "edu", "GB": "ac.uk", "DE": "de", "FR": "fr", "NL": "nl", "AU": "edu.au", "JP": "ac.jp"}


def university_domain(rng: random.Random, country: str) -> str:
    name = rng.choice(_UNI_FIRST) + rng.choice(_UNI_SECOND)
    tld = _UNI_TLD.get(country, "edu")
    return f"{'uni-' if tld in ('de', 'nl', 'fr') else ''}{name}.{tld}"


def company_domain(rng: random.Random, words: tuple[str, ...], nouns: tuple[str, ...]) -> str:
    return f"{rng.choice(words)}{rng.choice(nouns)}.{rng.choice(('com', 'io', 'ai', 'co', 'dev', 'net'))}"


def country_weights() -> tuple[list[str], list[float]]:
    return list(COUNTRIES), [v[0] for v in COUNTRIES.values()]


def utc_offset(country: str) -> float:
    return COUNTRIES[country][1]
