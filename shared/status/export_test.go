package status

// ReadGap is readGap, for the tests outside the package that count Core calls.
const ReadGap = readGap
