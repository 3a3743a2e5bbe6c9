"""The plugin interface, version 1: what a plugin returns and the only module of vcomp it may import.

A plugin is a Python distribution with an entry point in one of the four groups of :data:`GROUPS`. The entry
point names a :class:`Plugin` whose ``row`` is an instance of the group's row type, named as the entry
point::

    # pyproject.toml of the plugin
    [project.entry-points."vcomp.outputs"]
    tarball = "vcomp_output_tar:PLUGIN"

    # vcomp_output_tar/__init__.py
    from composer.plugins import api

    PLUGIN = api.Plugin(api_version=1, row=api.OutputType(name="tarball", ...))

**What a plugin may import**: this module, and the names of :data:`__all__` through it. Everything else of
``composer`` is internal and may change in any release; a name listed here keeps its meaning for as long as
:data:`API_VERSION` stays 1 (docs/plugins.md: the versioning policy). New optional fields (with a default) and
new names may be added within a version; a plugin must not rely on a row having no more fields than it knows.

**The rows**, one type per group:

* ``vcomp.outputs``: :class:`OutputType`: an output type a profile's ``outputs[].type`` names. Its
  ``builder(workshop, job, out_dir)`` writes the output's files into ``out_dir`` from the installed root
  (``workshop.root``) and returns a :class:`BuiltOutput`; ``options`` (JSON schema per option) complete the
  profile schema; ``tools`` are checked on the host before a build; ``media=""`` unless ``vcomp boot`` can
  boot it (``kernel``, ``cdrom``, ``disk``).
* ``vcomp.sources``: :class:`SourceKind`: a recipe's ``[[source]] kind``. ``fill(table, context, index)``
  fills ``context.staging`` and returns a :class:`SourceResult`; ``schema`` is the JSON schema of its table
  (it completes schemas/recipe.schema.json). Each provenance entry of the result is a mapping with ``kind``
  and any of ``name``, ``version``, ``arch``, ``sha256``, ``path``, ``size``, ``installed-size`` (the
  package schema's ``provenance.sources``).
* ``vcomp.transports``: :class:`Transport`: a URL scheme repositories and mirrors may be served over.
  ``make(limits)`` returns a fetch function ``url -> iterator of bytes`` that keeps the contract of
  :mod:`composer.repo.transports` (a missing file raises ``DownloadHTTPError(message, 404)``, any other
  failure a ``DownloadError``).
* ``vcomp.policies``: :class:`Gate`: a policy gate, its key under a profile's ``policy:`` (``rule``), the
  JSON ``schema`` of that key's value, ``active(context)`` and exactly one hook (``locked``, ``output``,
  ``change`` or ``callout``) yielding violation messages.

**What a plugin can break**: it runs inside vcomp with vcomp's privileges (often root, holding signing keys):
it can read and write anything vcomp can. Install a plugin only from a distribution you trust as much as
any other dependency; ``--no-plugins`` / ``VCOMP_NO_PLUGINS=1`` turn every plugin off.
"""

from __future__ import annotations

from collections.abc import Mapping

from tuf.api.exceptions import DownloadError, DownloadHTTPError

from composer.arch import ARCHES
from composer.errors import ComposerError, ToolError, UserError
from composer.fsutil import atomic_output
from composer.gitops.policy import CalloutItem, ChangeItem, Gate, Locked, OutputItem
from composer.gitops.policy import Context as PolicyContext
from composer.image.outputs import OutputType
from composer.image.workshop import Builder, BuiltOutput, OutputJob, Workshop
from composer.package.sources import Context as SourceContext
from composer.package.sources import Fill, RecipeView, SourceKind, SourceResult
from composer.plugins.base import API_VERSION, Plugin
from composer.repo.deadlines import TransportLimits
from composer.repo.transports import Fetch, Transport
from composer.run import require_tool, run

ARCH_NAMES: tuple[str, ...] = tuple(ARCHES)
"""The architectures vcomp knows (an output type's ``arches`` is some of them)."""

GROUPS: Mapping[str, type] = {
    "vcomp.outputs": OutputType,
    "vcomp.sources": SourceKind,
    "vcomp.transports": Transport,
    "vcomp.policies": Gate,
}
"""Each entry point group and the type of the row its plugins return."""

__all__ = [
    "API_VERSION", "ARCH_NAMES", "GROUPS", "Builder", "BuiltOutput", "CalloutItem", "ChangeItem", "ComposerError",
    "DownloadError", "DownloadHTTPError", "Fetch", "Fill", "Gate", "Locked", "OutputItem",
    "OutputJob", "OutputType", "Plugin", "PolicyContext", "RecipeView", "SourceContext", "SourceKind", "SourceResult",
    "ToolError", "Transport", "TransportLimits", "UserError", "Workshop", "atomic_output", "require_tool", "run",
]
"""The names a plugin may use (by group: :data:`GROUPS`; errors to raise: vcomp prints their one line and hint;
helpers: :func:`atomic_output` to write a file, :func:`run` / :func:`require_tool`, the one subprocess gateway)."""
