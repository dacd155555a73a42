"""dimsekit: plugin-based DICOM network clients (SCUs).

The host (this package) owns what every SCU needs: CLI assembly, plugin
loading, the association, logging and the ``-k`` key machinery.  Commands
come from plugins; see :mod:`dimsekit.api` for what a plugin may use.
"""

__version__ = "0.1.0"
