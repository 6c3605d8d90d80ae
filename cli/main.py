def main() -> int:
    print("pmtop")
    return 0
