"""The provenance of a build: an in-toto v1 statement with a SLSA v1 predicate; its resolved dependencies are
exactly the lock's packages. Deterministic: the invocation id is the build's seed, the only time is
SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from composer import __version__
from composer.profile.model import Profile
from composer.report.stamps import iso_time
from composer.solve.lockmodel import LockedPackage

BUILD_TYPE = "https://veridian-composer.dev/vcomp/build/v1"
BUILDER_ID = f"https://veridian-composer.dev/vcomp@{__version__}"


def provenance(profile: Profile, arch: str, packages: Sequence[LockedPackage], outputs: Sequence[Mapping[str, Any]], *,
               seed: str, lock_digest: str, epoch: int, source: Mapping[str, object] | None = None) -> dict[str, Any]:
    """An in-toto v1 statement: subjects are the output files, the predicate SLSA provenance v1; ``source`` (the
    git commit of the profile's repository, a SLSA resource descriptor) is the first resolved dependency."""
    subjects = [{"name": f["path"], "digest": {"sha256": f["sha256"]}} for o in outputs for f in o["files"]]
    deps: list[dict[str, Any]] = [
        {"name": p.name, "uri": f"vpk:{p.repository}/{p.name}@{quote(p.version, safe='+~')}?arch={p.arch}",
         "digest": {"sha256": p.sha256}} for p in packages]
    if source:
        deps.insert(0, dict(source))
    return {"_type": "https://in-toto.io/Statement/v1", "subject": subjects,
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": BUILD_TYPE,
                    "externalParameters": {"profile": profile.path.name, "profileDigest": profile.digest,
                                           "arch": arch, "outputs": [o["name"] for o in outputs]},
                    "internalParameters": {"sourceDateEpoch": epoch, "lockDigest": lock_digest},
                    "resolvedDependencies": deps},
                "runDetails": {"builder": {"id": BUILDER_ID},
                               "metadata": {"invocationId": seed, "startedOn": iso_time(epoch),
                                            "finishedOn": iso_time(epoch)}}}}
