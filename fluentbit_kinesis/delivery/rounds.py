"""Rounds of one chunk's flush until it is delivered, with a pause between
them (the hand-off's threads, and the engine thread when there is no durable
state to keep a chunk in)."""
import random

FLB_OK = 1
MAX_PAUSE = 10.0  # between flush rounds of a chunk that is not delivered
MAX_FAILED_ROUNDS = 3  # rounds that raise before a chunk is given up to the dead letters


def flush_until_delivered(flush, data, tag, stop, log, give_up=None):
    """Flush rounds until the chunk is delivered (True) or `stop` is set
    (False). A round that raises is logged; after MAX_FAILED_ROUNDS of them
    the chunk goes to give_up(data, tag, reason), when given."""
    rounds = failed_rounds = 0
    while not stop.is_set():
        try:
            if flush(data, tag) == FLB_OK:
                return True
        except OSError as exc:  # the dead-letter file cannot be written (disk full): retry
            log.error(f"flush failed: {exc}")
        except Exception as exc:  # a bug: never block the queue forever on one chunk
            failed_rounds += 1
            log.error(f"flush failed: {exc.__class__.__name__}: {str(exc)[:300]}")
            if give_up is not None and failed_rounds >= MAX_FAILED_ROUNDS:
                reason = f"flush failed {failed_rounds} times: {exc.__class__.__name__}"
                try:
                    give_up(data, tag, reason)
                except Exception as error:
                    log.error(f"cannot dead-letter a chunk ({reason}): {error.__class__.__name__}: "
                              f"{str(error)[:300]}")
                return True
        rounds += 1
        stop.wait(min(MAX_PAUSE, 0.5 * 2 ** min(rounds, 10)) * random.uniform(0.5, 1.0))
    return False
