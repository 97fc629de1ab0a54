def helper_value():
    return 42
