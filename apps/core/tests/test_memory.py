"""The per-process memory every app uses: a period read from its setting when an entry is
stored, 0 meaning "remember nothing", a bound on its size, and one reset for tests."""

from apps.core.memory import ProcessMemory, memories_reset


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_for_the_period_its_setting_says_when_it_is_stored(settings):
    clock = Clock()
    memory = ProcessMemory("test", seconds="SOLD_OUT_MEMORY_SECONDS", timer=clock)
    settings.SOLD_OUT_MEMORY_SECONDS = 0  # no memory: nothing is kept
    memory.set("sale", True)
    assert memory.get("sale", False) is False

    settings.SOLD_OUT_MEMORY_SECONDS = 2
    memory.set("sale", True)
    clock.now += 1.9
    assert memory.get("sale", False) is True
    clock.now += 0.2
    assert memory.get("sale", False) is False

    memory.set("missing", None, seconds=5)  # an entry of its own period; None is a value
    clock.now += 4.9
    assert memory.get("missing", "absent") is None
    clock.now += 0.2
    assert memory.get("missing", "absent") == "absent"


def test_the_memory_is_bounded_and_forgets_on_demand():
    memory = ProcessMemory("test", seconds=60, maxsize=3)
    for sale in range(10):  # made-up ids cannot grow the process
        memory.set(sale, sale)
    assert len(memory) == 3
    assert memory.get(9) == 9 and memory.get(0) is None
    memory.forget(9)
    assert memory.get(9) is None


def test_one_reset_empties_every_memory_of_the_process():
    memories = [ProcessMemory(f"test-{n}", seconds=60) for n in range(3)]
    for memory in memories:
        memory.set("probe", "remembered")
    memories_reset()
    assert [memory.get("probe") for memory in memories] == [None, None, None]
