"""Hash bins under each developer's namespace (issue 20 item 2; docs/repo-devbins.md).

The top-level targets role delegates a developer's package names (``packages/PATTERN/*``) to the developer's
role, as before. A developer role with more than ``UNBINNED_MAX`` packages lists none itself: it delegates
every path to ``2**b`` succinct hash bins (TAP 15) named ``ROLE.binsB-XX``, signed by the developer's own keys
with the developer's threshold. python-tuf only walks into a developer's bins for a path the top-level role
delegated to that developer, so a bin can never list another developer's name (it would never be consulted
for it).

* One ``repo add`` re-signs the bins its packages hash to; the developer role is re-signed only when its
  delegation changes (the first binning, more bins, new keys after a rotation) or it nears its expiry
  (then with every bin: no bin ever expires before its developer role).
* The bin count grows like the sparse index's (``FILES_PER_BIN`` packages a bin): when an add makes one bin
  list more than ``2 * FILES_PER_BIN`` packages, every package is re-binned into ``bin_bits(n)`` bits. ``B`` is
  in the bins' names, so re-binning writes new bin roles and leaves the old ones untouched until the
  developer role points at the new ones (a kill in between leaves a complete, consistent old layout).
* The names cannot collide with a role: ``repo delegate`` and ``repo vendor`` refuse role names with a dot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tuf.api.metadata import DelegatedRole, Metadata, SuccinctRoles, TargetFile, Targets

from composer.repo.hashbins import FILES_PER_BIN, MAX_BIN_BITS, assign, bin_bits, in_bin, succinct_delegations
from composer.repo.store import SERVICE_ROLES, RepoStore, expires

UNBINNED_MAX = FILES_PER_BIN    # a developer role with at most this many packages lists them itself
GROW_AT = 2 * FILES_PER_BIN     # a bin listing more than this many packages makes the role re-bin
BIN_INFIX = ".bins"             # ROLE.binsB-XX: B bits (a dot: no delegated role name has one)


def bin_prefix(role: str, bits: int) -> str:
    return f"{role}{BIN_INFIX}{bits}"


def succinct_of(md: Targets) -> SuccinctRoles | None:
    """The hash bins a developer role delegates to, or None (an unbinned role)."""
    return md.delegations.succinct_roles if md.delegations is not None else None


def bins_of(md: Targets) -> list[str]:
    """The names of every hash bin of a developer role (none: unbinned)."""
    succinct = succinct_of(md)
    return list(succinct.get_roles()) if succinct is not None else []


def developer_targets(store: RepoStore, role: str, delegated: DelegatedRole | None = None,
                      ) -> dict[str, TargetFile]:
    """path -> target info of every package developer role ``role`` lists, itself or through its bins. A bin's
    path counts only where a client would find it: in the bin it hashes to, and (with ``delegated``, the
    top-level delegation) delegated to the developer."""
    md = store.load(role, Targets).signed
    out = dict(md.targets)
    succinct = succinct_of(md)
    for name in bins_of(md):
        if store.has_role(name):
            assert succinct is not None
            for path, info in in_bin(succinct, name, store.load(name, Targets).signed.targets).items():
                if delegated is None or delegated.is_delegated_path(path):
                    out.setdefault(path, info)
    return out


@dataclass(slots=True, kw_only=True)
class DeveloperRole:
    """One developer role being written by an upload: the role and the bins it touched, at their next versions.

    :meth:`add` lists targets; :meth:`pending` is what to sign, bins first and the developer role last (what a
    client reads first is written last)."""

    store: RepoStore
    name: str
    delegated: DelegatedRole          # the top-level delegation: the developer's keys and threshold
    keys: Mapping[str, object]        # keyid -> key of the top-level delegations (the developer's public keys)
    md: Metadata[Targets]
    days: int
    bins: dict[str, Metadata[Targets]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    role_dirty: bool = False

    @classmethod
    def open(cls, store: RepoStore, name: str, delegated: DelegatedRole, keys: Mapping[str, object], days: int,
             ) -> DeveloperRole:
        if store.has_role(name):
            md = store.load(name, Targets)
            md.signed.version += 1
        else:
            md = Metadata(Targets(version=1, expires=expires(1)))
        return cls(store=store, name=name, delegated=delegated, keys=keys, md=md, days=days)

    @property
    def succinct(self) -> SuccinctRoles | None:
        return succinct_of(self.md.signed)

    def bin(self, name: str) -> Metadata[Targets]:
        if name not in self.bins:
            if self.store.has_role(name):
                md = self.store.load(name, Targets)
                md.signed.version += 1
            else:
                md = Metadata(Targets(version=1, expires=expires(1)))
            self.bins[name] = md
        return self.bins[name]

    def lists(self, path: str) -> bool:
        succinct = self.succinct
        if succinct is None:
            return path in self.md.signed.targets
        return path in self.bin(succinct.get_role_for_target(path)).signed.targets

    def add(self, infos: Mapping[str, TargetFile]) -> None:
        succinct = self.succinct
        if succinct is None:
            self.md.signed.targets.update(infos)
            self.role_dirty = True
            if len(self.md.signed.targets) > UNBINNED_MAX:
                self._rebin(dict(self.md.signed.targets), bin_bits(len(self.md.signed.targets)))
            return
        for path, info in infos.items():
            name = succinct.get_role_for_target(path)
            self.bin(name).signed.targets[path] = info
            self.dirty.add(name)
        if succinct.bit_length < MAX_BIN_BITS and any(len(self.bins[n].signed.targets) > GROW_AT
                                                      for n in self.dirty):
            everything = self._everything()
            self._rebin(everything, min(MAX_BIN_BITS, max(succinct.bit_length + 1, bin_bits(len(everything)))))
        elif self._stale():
            self._rebin(self._everything(), succinct.bit_length)

    def _stale(self) -> bool:
        """New keys or threshold (a rotation), or a developer role within half its period of expiring."""
        succinct = self.succinct
        assert succinct is not None
        return (sorted(succinct.keyids) != sorted(self.delegated.keyids)
                or succinct.threshold != self.delegated.threshold
                or self.md.signed.expires <= expires(self.days // 2))

    def _everything(self) -> dict[str, TargetFile]:
        succinct = self.succinct
        assert succinct is not None
        out = dict(self.md.signed.targets)
        for name in succinct.get_roles():
            if name in self.bins or self.store.has_role(name):
                out.update(in_bin(succinct, name, self.bin(name).signed.targets))
        return out

    def _rebin(self, everything: Mapping[str, TargetFile], bits: int) -> None:
        """List ``everything`` in ``2**bits`` bins (every one signed) and point the developer role at them."""
        old = self.succinct
        keys = {k: self.keys[k] for k in self.delegated.keyids}
        self.md.signed.delegations = succinct_delegations(keys, self.delegated.threshold, bits,
                                                          bin_prefix(self.name, bits))
        self.md.signed.targets = {}
        self.role_dirty = True
        if old is not None and old.bit_length != bits:
            self.bins = {n: md for n, md in self.bins.items() if n not in set(old.get_roles())}
            self.dirty = set()
        new = self.succinct
        assert new is not None
        for name, listed in assign(new, everything.items()).items():
            self.bin(name).signed.targets = listed
            self.dirty.add(name)

    def pending(self) -> list[tuple[str, Metadata[Targets]]]:
        """(role, metadata) to sign, bins first, each with a fresh expiry."""
        out = []
        for name in sorted(self.dirty):
            md = self.bins[name]
            md.signed.expires = expires(self.days)
            out.append((name, md))
        if self.role_dirty:
            self.md.signed.expires = expires(self.days)
            out.append((self.name, self.md))
        return out

    def signed(self) -> None:
        """After :meth:`pending` was signed: the next chunk of the same upload writes the next versions."""
        for name in self.dirty:
            self.bins[name].signed.version += 1
        if self.role_dirty:
            self.md.signed.version += 1
        self.dirty = set()
        self.role_dirty = False


def snapshot_roles(store: RepoStore, roles: Sequence[str]) -> list[str]:
    """``roles`` (the top-level delegations) each followed by its hash bins: what the snapshot lists."""
    out = []
    for role in roles:
        out.append(role)
        if role not in SERVICE_ROLES and store.has_role(role):   # the index's bins are publish's own
            out.extend(bins_of(store.load(role, Targets).signed))
    return out
