"""Vietnam's provinces and communes for the declaration form, from `vietnam-provinces`.

The package follows the 2025 reorganisation (in force 1 July 2025): two levels, 34
provinces and 3,321 communes/wards, no districts. A change of administrative units is a
new release of that package (a data change), nothing here.

    >>> dict(provinces())["79"]
    'Thành phố Hồ Chí Minh'
    >>> commune_name("79", "26740")
    'Phường Sài Gòn'
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["provinces", "communes", "province_name", "commune_name", "DATA_VERSION"]


def _package():
    import vietnam_provinces

    return vietnam_provinces


DATA_VERSION = ""
try:  # the form works without it only in the sense of naming what is missing
    DATA_VERSION = _package().__data_version__
except ImportError:  # pragma: no cover - the collector extra installs it
    pass


@lru_cache(maxsize=1)
def provinces() -> tuple[tuple[str, str], ...]:
    """(code, name) of every province, codes as two-digit text, in the package's order."""
    vp = _package()
    return tuple((f"{int(p.code):02d}", p.name) for p in vp.Province.iter_all())


@lru_cache(maxsize=64)
def communes(province: str) -> tuple[tuple[str, str], ...]:
    """(code, name) of the communes and wards of `province` (five-digit codes), by name."""
    vp = _package()
    if province not in dict(provinces()):
        return ()
    items = ((f"{int(w.code):05d}", " ".join(w.name.split())) for w in vp.Ward.iter_by_province(vp.ProvinceCode(int(province))))
    return tuple(sorted(items, key=lambda item: item[1]))


def province_name(code: str) -> str | None:
    return dict(provinces()).get(code)


def commune_name(province: str, code: str) -> str | None:
    return dict(communes(province)).get(code)
