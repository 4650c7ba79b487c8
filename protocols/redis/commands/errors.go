package commands

// Error is an argument error worded as Redis words it, without the "ERR "
// prefix of the wire: a frontend replies "-ERR " + err.Error() + "\r\n".
// It is comparable and allocation-free.
type Error string

func (e Error) Error() string { return string(e) }

// Errors returned by Keys. The texts are those of redis-server 7.0 for the
// same mistake.
const (
	// ErrWrongArity is the Kind of every command's ArityError.
	ErrWrongArity Error = "wrong number of arguments"
	// ErrUnknownSubcommand: a container command (CONFIG, OBJECT, ...) was
	// given a subcommand the table does not have. Redis says "unknown
	// subcommand '<sub>'. Try <CONTAINER> HELP."; the frontend formats that.
	ErrUnknownSubcommand Error = "unknown subcommand"
	ErrSyntax            Error = "syntax error"
	ErrNotInteger        Error = "value is not an integer or out of range"
	// EVAL, EVALSHA, FCALL and their _RO variants, SINTERCARD.
	ErrNumKeysTooLarge Error = "Number of keys can't be greater than number of args"
	// EVAL, EVALSHA, FCALL and their _RO variants.
	ErrNumKeysNegative Error = "Number of keys can't be negative"
	// FCALL, FCALL_RO: numkeys is not an integer.
	ErrBadNumKeys Error = "Bad number of keys provided"
	// SINTERCARD, LMPOP, BLMPOP, ZMPOP, BZMPOP.
	ErrNumKeysNotPositive Error = "numkeys should be greater than 0"
	// The Kind of the "at least 1 input key is needed for '<cmd>' command"
	// errors of ZUNION, ZINTER, ZDIFF, ZINTERCARD and the *STORE variants.
	ErrAtLeastOneKey Error = "at least 1 input key is needed"
	// MIGRATE with the KEYS option and a non-empty key argument.
	ErrMigrateKeys Error = "When using MIGRATE KEYS option, the key argument must be set to the empty string"
)

// CommandError is an error whose Redis text names the command, such as
// "wrong number of arguments for 'get' command". Every command keeps its
// own, made once, so returning one does not allocate. errors.Is matches
// it against its Kind.
type CommandError struct {
	Msg  string
	Kind Error
}

func (e *CommandError) Error() string { return e.Msg }

// Unwrap returns the error's Kind.
func (e *CommandError) Unwrap() error { return e.Kind }
