#!/usr/bin/env bash
# Formats every Swift file in place, then lints strictly (what CI checks).
set -euo pipefail
cd "$(dirname "$0")/.."
swift format format --in-place --recursive --parallel Package.swift Sources Tests Fuzz
swift format lint --strict --recursive --parallel Package.swift Sources Tests Fuzz
