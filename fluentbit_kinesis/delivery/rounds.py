"""Rounds of one chunk's flush until it is delivered, with a pause between
them (the hand-off's threads, and the engine thread when there is no durable
state to keep a chunk in)."""
import random

FLB_OK = 1
MAX_PAUSE = 10.0  # between flush rounds of a chunk that is not delivered
MAX_FAILED_ROUNDS = 3  # rounds that raise before a chunk is given up to the dead letters


def flush_until_delivered(flush, data, tag, stop, log, give_up=None, load=None):
    """Flush rounds until the chunk is delivered (True) or `stop` is set
    (False). A round that raises is logged; after MAX_FAILED_ROUNDS of them
    the chunk goes to give_up(data, tag, reason), when given. `load`, for a
    chunk kept on disk (then `data` is None): () -> (its bytes, or None and
    whether that ends it: spool.read_back), called for each round and for
    give_up, so that a round may let go of the bytes once shaped."""
    rounds = failed_rounds = 0
    while not stop.is_set():
        if load is not None:
            data, ended = load()
            if data is None:
                return ended  # damaged (set aside), or stopping
        try:
            if flush(data, tag) == FLB_OK:
                return True
        except OSError as exc:  # the dead-letter file cannot be written (disk full): retry
            log.error(f"flush failed: {exc}")
        except Exception as exc:  # a bug: never block the queue forever on one chunk
            failed_rounds += 1
            log.error(f"flush failed: {exc.__class__.__name__}: {str(exc)[:300]}")
            if give_up is not None and failed_rounds >= MAX_FAILED_ROUNDS:
                if load is not None:  # the round may have let go of its bytes
                    data, ended = load()
                    if data is None:
                        return ended
                _give_up(give_up, data, tag, failed_rounds, exc, log)
                return True
        if load is not None:
            data = None  # not held through the pause: read again for the next round
        rounds += 1
        stop.wait(min(MAX_PAUSE, 0.5 * 2 ** min(rounds, 10)) * random.uniform(0.5, 1.0))
    return False


def _give_up(give_up, data, tag, failed_rounds, exc, log):
    reason = f"flush failed {failed_rounds} times: {exc.__class__.__name__}"
    try:
        give_up(data, tag, reason)
    except Exception as error:
        log.error(f"cannot dead-letter a chunk ({reason}): {error.__class__.__name__}: {str(error)[:300]}")
