// The project's one quoting module lives with the router; this path is kept for the modules that import it here.
export { quoteIdent, quoteLiteral } from '../router/SqlQuoting.js'
