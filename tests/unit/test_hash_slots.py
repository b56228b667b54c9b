"""The password-hash pool is sized from the cgroup's memory limit."""

from __future__ import annotations

from pathlib import Path

from fta.accounts.memory_limit import SLOTS_WITHOUT_LIMIT, cgroup_memory_limit, hash_slots_for

MIB = 1024 * 1024


def test_the_portal_limit_leaves_three_quarters_for_the_portal() -> None:
    assert hash_slots_for(64 * MIB, 512 * MIB) == 2
    assert hash_slots_for(64 * MIB, 1024 * MIB) == 4


def test_a_tiny_limit_still_checks_passwords_one_at_a_time() -> None:
    assert hash_slots_for(64 * MIB, 128 * MIB) == 1


def test_no_limit_gets_a_fixed_pool() -> None:
    assert hash_slots_for(64 * MIB, None) == SLOTS_WITHOUT_LIMIT


def test_v2_and_v1_limit_files_are_read(tmp_path: Path) -> None:
    v2 = tmp_path / "memory.max"
    v1 = tmp_path / "memory.limit_in_bytes"
    v2.write_text(f"{512 * MIB}\n")
    assert cgroup_memory_limit((v2, v1)) == 512 * MIB
    v2.write_text("max\n")
    assert cgroup_memory_limit((v2, v1)) is None
    v1.write_text("9223372036854771712\n")
    assert cgroup_memory_limit((tmp_path / "absent", v1)) is None
    v1.write_text(f"{256 * MIB}\n")
    assert cgroup_memory_limit((tmp_path / "absent", v1)) == 256 * MIB
