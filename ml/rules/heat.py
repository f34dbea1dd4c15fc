"""Heat stress: the hour's high against the crop's threshold."""

from __future__ import annotations

from datetime import timedelta

from ml.context import Advice, ZoneContext, fit_message, num
from ml.rules.common import last_hour
from smartfarm.layout import Crop, SensorKind
from smartfarm.records import RecommendationKind, Severity

HEAT_THRESHOLD_C: dict[Crop, float] = {
    Crop.TOMATO: 35.0,  # fruit set fails above ~35 degC day temperature (Sato et al. 2000, Plant Cell Environ.)
    Crop.MAIZE: 38.0,  # pollen viability collapses near 38 degC at silking (Schoper et al. 1987, Crop Sci.)
    Crop.WHEAT: 32.0,  # grain set and filling suffer above ~31-32 degC at anthesis (Porter & Gawith 1999)
    Crop.POTATO: 30.0,  # tuber growth stops above ~29-30 degC (Levy & Veilleux 2007, Am. J. Potato Res.)
    Crop.LETTUCE: 29.0,  # bolting, tipburn and bitterness above ~28-30 degC (UC ANR lettuce production guide)
    Crop.GRAPE: 40.0,  # photosynthesis shuts down and berries sunburn near 40 degC (Greer & Weedon 2013)
}
"""Air temperature (degC) at which each crop starts to suffer: the baseline's assumption from the literature."""
HEAT_CRITICAL_ABOVE_C = 5.0

_HEAT_EFFECT: dict[Crop, str] = {
    Crop.TOMATO: "flowers drop and fruit fails to set",
    Crop.MAIZE: "pollen dries out and kernels fail to set",
    Crop.WHEAT: "grain filling is cut short",
    Crop.POTATO: "tubers stop growing",
    Crop.LETTUCE: "it bolts, turns bitter and gets tipburn",
    Crop.GRAPE: "leaves stop working and berries sunburn",
}


def heat(context: ZoneContext) -> list[Advice]:
    """Heat stress when the last hour's maximum reaches the crop's threshold; critical 5 degC above it."""
    last = last_hour(context, SensorKind.AIR_TEMPERATURE)
    crop = context.zone.crop
    threshold = HEAT_THRESHOLD_C[crop]
    if last is None or last.max < threshold:
        return []
    message = (
        f"Heat stress on {context.zone.name}: air temperature reached {last.max:.1f} °C in the last hour, above the "
        f"{num(threshold)} °C at which {crop.value} suffers ({_HEAT_EFFECT[crop]}). Irrigate early in the morning so "
        "the crop can keep cool by transpiring, shade sensitive plants, and leave field work to the cool hours."
    )
    return [
        Advice(
            kind=RecommendationKind.HEAT,
            severity=Severity.CRITICAL if last.max >= threshold + HEAT_CRITICAL_ABOVE_C else Severity.WARNING,
            message=fit_message(message),
            confidence=0.9,
            inputs={"tmax_c": last.max, "threshold_c": threshold},
            valid_for=timedelta(hours=12),
        )
    ]
