"""diskimage-builder (DIB) as an optional backend of the ``dib`` output type (docs/dib.md).

:mod:`composer.image.dib.plan` is the pure part (the profile's elements and formats checked, the element vcomp
hands DIB, the block-device configuration, DIB's command line and environment); :mod:`composer.image.types.dib`
runs it; :mod:`composer.image.dib.partx` is the block-device plugin DIB's own process imports.
"""
