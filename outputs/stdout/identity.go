package stdout

// Identity implements outputs.Identifier.
func (o *Output) Identity() string { return "stdout" }
