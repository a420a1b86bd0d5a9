"""Package discovery for setuptools (the metadata lives in pyproject.toml): seaview and every
subpackage under it, found rather than listed, so a new subpackage needs no edit here.

The collectors and kernels live in ``seaview/collectors`` and ``seaview/kernels``, as they are
installed. As top-level folders of the checkout (they once were) they shadowed distributions of
the same name whenever the checkout's root was on ``sys.path`` (pytest, ``python -m`` from the
root): transformers 5.25 requires Hugging Face's ``kernels`` and imports it at load time.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["seaview", "seaview.*"]))
