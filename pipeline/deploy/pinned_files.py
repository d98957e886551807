"""Which devices' files a recipe has chosen already, and by which field: `validate.ship` names a file
per device (what `compress tune` writes into a tuned recipe, so a run ships the files the study
scored); `validate.artifact` names one kind for every device, which settles the choice only when the
run made a single file of it (a forced precision still chooses among the widths). Checked before
anything is measured, so a name the run cannot honour costs seconds, not a timing."""

from __future__ import annotations

from pipeline.core.errors import StageError


def pinned_files(ship: dict[str, str], artifact: str, names: list[str], devices: list[str]) -> dict[str, tuple[str, str]]:
    """Device -> (the file it ships, the field that chose it), for each device whose file is chosen
    already; the others are left to `variant_choice`. `names`: the files this run made that the
    choice may take; `devices`: the recipe's device profile names."""
    if ship:
        for problem in devices_not_in_recipe(ship, devices):
            raise StageError(f"validate.{problem}")
        for device, name in ship.items():
            if name not in names:
                raise StageError(f"validate.ship.{device}: {name} is not a file this run made ({', '.join(names)}); name one of them, "
                                 f"or drop {device} from ship to let validate choose")
        return {device: (name, "validate.ship") for device, name in ship.items()}
    if artifact == "auto" or len(names) > 1:
        return {}
    return {device: (artifact, "validate.artifact") for device in devices}


def devices_not_in_recipe(ship: dict[str, str], devices: list[str] | tuple[str, ...]) -> list[str]:
    """A problem line per device `ship` names that the recipe does not judge (`recipe check` lists
    them all before any training; validate refuses the first)."""
    return [f"ship: {device} is not among this recipe's devices ({', '.join(devices)}); name one of them or drop it"
            for device in ship if device not in devices]
