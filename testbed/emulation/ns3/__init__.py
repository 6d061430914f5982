"""The ns-3 backend: the task graph of a run executed at packet level in ns-3 (TCP,
point-to-point links, 802.11 BSSs for media), the reference for shared Wi-Fi airtime and
transport round trips. ``testbed validate ns3 SCENARIO --out DIR``; needs the optional
extra ``ns3`` (:mod:`.validate` says what that installs)."""
