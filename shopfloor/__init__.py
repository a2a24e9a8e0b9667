"""shopfloor: Kubeflow Pipelines components that take ML models into production in Industry 4.0 plants.

The one installed namespace. Its lower layers live in this folder (``common``, ``app``, ``demo``); the steps,
pipelines and model server keep their own top-level folders in the repository and install as
``shopfloor.components``, ``shopfloor.pipelines`` and ``shopfloor.serving`` (setup.cfg's ``package_dir``).
"""

__version__ = "0.1.0"
