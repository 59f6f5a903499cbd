"""Candidate character names: full names with distinct first names and surnames per scenario,
so a speaker can never be confused with another by a shared name token."""

from __future__ import annotations

import random

FIRST = """Maya Daniel Aisha Tomas Priya Jonas Elena Kofi Sofia Marcus Lena Hiroshi Amara Lucas Nadia
Ethan Ines Ravi Clara Mateo Yara Oliver Zainab Felix Chloe Arjun Nora Diego Leila Samuel Mei Victor
Hannah Omar Julia Kwame Rosa Adrian Fatima Henrik Lucia Theo Amina Pablo Grace Malik Ingrid Rafael
Sana Jasper Alma Kenji Esther Bruno Layla Nikolai Tessa Idris Beatriz Anton""".split()
LAST = """Chen Okafor Novak Alvarez Haddad Lindqvist Moreau Tanaka Mensah Rossi Kowalski Ibrahim Silva
Petrov Nakamura Oduya Fischer Castillo Rahman Dubois Jensen Mbeki Costa Sato Hughes Varga Ortiz
Bianchi Keller Adeyemi Laurent Kim Horvat Suzuki Aziz Brennan Popescu Eriksen Garcia Nwosu Weber
Santos Ivanova Yilmaz Quinn Mendes Larsen Abara Fontaine Takahashi Ward Kaur Molina Hale Sorensen
Bauer Ansah Duarte Reyes Lund""".split()


def candidate_names(rng: random.Random, count: int) -> list[str]:
    firsts = rng.sample(FIRST, count)
    lasts = rng.sample(LAST, count)
    return [f"{a} {b}" for a, b in zip(firsts, lasts)]
