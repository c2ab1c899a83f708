"""The model's two exceptions, in a module of their own that is never compiled (docs/design.md
§8, Speed: a compiled class cannot derive from ``AssertionError``): :class:`AbortError`
stops the walk of an attempt that is over, :class:`ConservationError` reports requests
lost or counted twice. Both are re-exported by :mod:`sim.model.request`."""


class AbortError(Exception):
    """Raised inside the walk of an attempt that is over: given up by its guest or its
    device, or lost by a crashed parent (:mod:`sim.model.faults`). Only the serving of streams
    that tolerate faults catches it; without faults nothing raises it."""


class ConservationError(AssertionError):
    """Requests were lost or counted twice: completed + failed + in flight is not the
    number issued (a defect of the model, never of the input)."""
