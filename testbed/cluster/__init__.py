"""Devices, the device catalog, link technologies and network topologies (no SimPy here).

Import from this package: :class:`DeviceSpec` and the catalog (:func:`make_device`, ...),
:class:`LinkSpec` and :class:`Topology`, :func:`load_topology` for topology files,
:func:`build_topology` for a scenario's ``topology:`` section, and the registry of
:data:`TOPOLOGY_GENERATORS` (``full_mesh``, ``star``, ``line``).
"""

from testbed.cluster.build import build_topology
from testbed.cluster.catalog import catalog_frame, get_device_type, list_device_types, make_device
from testbed.cluster.device import DeviceSpec
from testbed.cluster.generators import TOPOLOGY_GENERATORS
from testbed.cluster.link_catalog import get_link_technology, list_link_technologies
from testbed.cluster.topology import LinkSpec, Topology
from testbed.cluster.topology_file import load_topology

__all__ = [
    "DeviceSpec", "make_device", "get_device_type", "list_device_types", "catalog_frame",
    "get_link_technology", "list_link_technologies", "LinkSpec", "Topology", "load_topology",
    "build_topology", "TOPOLOGY_GENERATORS",
]
