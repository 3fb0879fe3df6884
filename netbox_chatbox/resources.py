"""What a NetBox process holds for chats, counted, so a leak shows (the status API) before users see "busy".

Path A costs the most: each Claude session is one CLI process (~250 MB) with a private temporary HOME.
The slots cap them per process (``max_active_sessions``); the registries count what really exists.
"""

import os
import threading

from .conf import get_settings


class _SdkSlots:
    """Live path A agents in this process; each one is a Claude CLI process of ~250 MB."""

    def __init__(self):
        self._lock = threading.Lock()  # the WSGI transport runs sessions in several threads
        self.in_use = 0

    def acquire(self) -> bool:
        with self._lock:
            if self.in_use >= get_settings().max_active_sessions:
                return False
            self.in_use += 1
            return True

    def release(self):
        with self._lock:
            self.in_use -= 1


sdk_slots = _SdkSlots()
cli_processes: dict[int, object] = {}  # pid → the CLI's process object (has ``returncode``)
temp_homes: set[str] = set()  # the CLIs' private HOME folders


def counts() -> dict:
    """The numbers an admin needs to see a leak: slots, live CLI processes, temporary homes (this process)."""
    for pid, process in list(cli_processes.items()):
        if process.returncode is not None:
            cli_processes.pop(pid, None)
    for home in list(temp_homes):
        if not os.path.isdir(home):
            temp_homes.discard(home)
    return {
        "pid": os.getpid(),
        "cli_slots_in_use": sdk_slots.in_use,
        "cli_slots_max": get_settings().max_active_sessions,
        "cli_processes": len(cli_processes),
        "temp_homes": len(temp_homes),
    }
