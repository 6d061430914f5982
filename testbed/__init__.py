"""testbed: an event-driven testbed for LLM inference partitioned across edge devices."""

__version__ = "0.1.0"
