"""What the tests share besides fixtures: services they start, data they make, processes they run, and
the checks and counts more than one test module needs. Test modules and conftests import from here,
never from each other."""
