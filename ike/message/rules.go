package message

// checkRules is replaced by the per-exchange rules table.
func checkRules(m *Message, outer int, encrypted bool) error { return nil }
