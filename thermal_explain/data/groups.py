"""Subject-disjoint validation: group images by a pattern on their file names, split groups.

Several images of one person share most of what a network can memorize (head shape,
hair, glasses, the person's own left-right differences). When they fall on both sides
of a train/validation split, validation measures recognition of people, not of the
finding. ``group_pattern`` names the person in the file name (``s(\\d+)_`` for
``s007_03.png``), and :func:`grouped_split` keeps every image of one group on one side.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from thermal_explain.errors import ConfigurationError, shorten

log = logging.getLogger(__name__)


def compile_group_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled ``group_pattern`` or a one-line ConfigurationError."""
    if not isinstance(pattern, str) or not pattern:
        raise ConfigurationError(
            f"Expected argument `group_pattern` to be a regular expression on the file name "
            f"(e.g. 's(\\d+)_' for s007_03.png) but got {pattern!r}"
        )
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ConfigurationError(
            f"group_pattern {pattern!r} is not a valid regular expression ({error}); e.g. "
            "'s(\\d+)_' for s007_03.png"
        ) from error


def group_ids(paths: Sequence[str | Path], pattern: str) -> list[str]:
    """The group of each image: the first capture group of ``pattern`` (or its whole match)
    searched in the file name.

    Raises:
        ConfigurationError: the pattern is invalid, or matches none or only some of the
            file names (an image without a group could put one person on both sides).
    """
    compiled = compile_group_pattern(pattern)
    groups: list[str] = []
    unmatched: list[str] = []
    for path in paths:
        name = Path(path).name
        found = compiled.search(name)
        if found is None:
            unmatched.append(name)
            groups.append("")
            continue
        captured = [group for group in found.groups() if group is not None]
        groups.append(captured[0] if captured else found.group(0))
    if unmatched:
        which = "none" if len(unmatched) == len(groups) else f"{len(unmatched)} of {len(groups)}"
        raise ConfigurationError(
            f"group_pattern {pattern!r} matches {which} of the file names (e.g. "
            f"{shorten(unmatched, 2)}); write a regex that finds the subject id in every "
            "name, e.g. 's(\\d+)_' for s007_03.png, or drop --data.group_pattern"
        )
    return groups


def grouped_split(
    labels: Sequence[int], groups: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Seeded split into sorted ``(train, val)`` index lists with no group on both sides.

    Groups are stratified by their most common label: within each class, whole groups
    (in a seeded random order) go to validation until about ``val_fraction`` of the
    class's images are there, at least one group when ``val_fraction > 0``; a class
    always keeps at least one group for training (a one-group class stays there).
    """
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    by_class: dict[int, list[str]] = {}
    for group, indices in members.items():
        majority = Counter(labels[i] for i in indices).most_common(1)[0][0]
        by_class.setdefault(majority, []).append(group)
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for label in sorted(by_class):
        names = sorted(by_class[label])
        names = [names[i] for i in rng.permutation(len(names))]
        size = sum(len(members[name]) for name in names)
        target = val_fraction * size
        taken = 0
        for position, name in enumerate(names):
            last = position == len(names) - 1  # the class keeps one group for training
            enough = taken > 0 and taken + len(members[name]) / 2 > target
            if val_fraction <= 0 or last or enough:
                break
            val.extend(members[name])
            taken += len(members[name])
    chosen = set(val)
    train = [index for index in range(len(groups)) if index not in chosen]
    return train, sorted(val)


def warn_shared_groups(
    train_paths: Sequence[str | Path], val_paths: Sequence[str | Path], pattern: str
) -> list[str]:
    """Warn (one line) when a group has images on both sides; returns those groups."""
    train = set(group_ids(train_paths, pattern))
    shared = sorted(train & set(group_ids(val_paths, pattern)))
    if shared:
        log.warning(
            "%d subject(s) have images in both the training and the validation folder (%s): "
            "validation then measures recognition of those subjects; move them to one side",
            len(shared),
            shorten(shared, 3),
        )
    return shared
