import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

/**
 * pgjdbc against a two-shard map with sharding.cross_shard_transactions: two_phase. pgjdbc sends everything through
 * the extended protocol: BEGIN in the group of the transaction's first statement, COMMIT in a group of its own.
 * Arguments: url user password keyOnShard0 keyOnShard1 anotherKeyOnShard1. Prints one JSON line per check.
 */
public class JdbcTwoPhase {
    static final Properties props = new Properties();
    static String url;

    public static void main(String[] args) throws Exception {
        url = args[0];
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("prepareThreshold", "1");
        props.setProperty("socketTimeout", "60");
        long k0 = Long.parseLong(args[3]), k1 = Long.parseLong(args[4]), k1b = Long.parseLong(args[5]);
        try (Connection c = DriverManager.getConnection(url, props)) {
            c.setAutoCommit(false);
            insert(c, k0, 10, null);
            insert(c, k1, 20, null);
            c.commit();
            report("commit across shards", balance(c, k0) == 10 && balance(c, k1) == 20, "balances " + balance(c, k0) + ", " + balance(c, k1));
            c.commit();

            update(c, k0, 11, null);
            update(c, k1, 21, null);
            c.rollback();
            report("rollback across shards", balance(c, k0) == 10 && balance(c, k1) == 20, "balances after rollback " + balance(c, k0) + ", " + balance(c, k1));
            c.commit();

            // The code is unique per shard, checked at COMMIT: shard 1 refuses to prepare.
            update(c, k0, 12, null);
            update(c, k1, 20, 5);
            insert(c, k1b, 1, 5);
            String state = "none";
            try {
                c.commit();
            } catch (SQLException e) {
                state = e.getSQLState();
                c.rollback();
            }
            boolean untouched = balance(c, k0) == 10 && balance(c, k1b) == -1;
            c.commit();
            report("a failing commit rolls back everywhere", untouched && state.equals("23505"), "state " + state + ", shard 0 balance " + balance(c, k0));
            c.commit();

            // A savepoint taken while only shard 0 is in the transaction: shard 1 joins at it, and the rollback
            // to it undoes the writes on both.
            update(c, k0, 13, null);
            java.sql.Savepoint sp = c.setSavepoint();
            update(c, k1, 40, null);
            update(c, k0, 41, null);
            c.rollback(sp);
            c.commit();
            report("a rollback to a savepoint undoes it on every shard", balance(c, k0) == 13 && balance(c, k1) == 20, "balances " + balance(c, k0) + ", " + balance(c, k1));
            c.commit();
        }
        // A fetch-size cursor over shard 0 (a portal read 10 rows at a time) with a write to shard 1 for each row:
        // every fetch goes back to the connection that holds the portal; COMMIT comes with the portal's Close.
        try (Connection c = DriverManager.getConnection(url, props)) {
            c.setAutoCommit(false);
            PreparedStatement read = c.prepareStatement("SELECT n FROM accounts, generate_series(1, 50) n WHERE accounts.id = ?");
            read.setFetchSize(10);
            read.setLong(1, k0);
            int rows = 0;
            try (ResultSet rs = read.executeQuery()) {
                while (rs.next()) {
                    rows++;
                    update(c, k1, 20 + rs.getInt(1), null);
                }
            }
            c.commit();
            report("a cursor on one shard while writing to another", rows == 50 && balance(c, k1) == 70, rows + " rows, balance " + balance(c, k1));
            update(c, k1, 20, null);
            c.commit();
        }
        // A fetch-size read across both shards (merged in ORDER BY order, 7 rows at a time: each shard's part is a
        // portal of its own in the transaction), with a write to shard 1 between fetches.
        try (Connection c = DriverManager.getConnection(url, props)) {
            c.setAutoCommit(false);
            PreparedStatement read = c.prepareStatement("SELECT a.id, n FROM accounts a, generate_series(1, 20) n WHERE a.id IN (?, ?) ORDER BY n, a.id");
            read.setFetchSize(7);
            read.setLong(1, k0);
            read.setLong(2, k1);
            StringBuilder got = new StringBuilder();
            StringBuilder want = new StringBuilder();
            for (int n = 1; n <= 20; n++) want.append(n).append(':').append(Math.min(k0, k1)).append(' ').append(n).append(':').append(Math.max(k0, k1)).append(' ');
            int rows = 0;
            try (ResultSet rs = read.executeQuery()) {
                while (rs.next()) {
                    got.append(rs.getInt(2)).append(':').append(rs.getLong(1)).append(' ');
                    if (++rows % 10 == 0) update(c, k1, 20 + rows, null);
                }
            }
            int during = balance(c, k1);
            c.rollback();
            report("a fetch-size read across shards in a transaction", got.toString().equals(want.toString()) && during == 60 && balance(c, k1) == 20, rows + " rows, balance " + during);
            c.commit();
        }
        // autosave=always: pgjdbc puts a savepoint in the group of every statement and rolls back to it after an
        // error, so the transaction goes on; the failed statement (a duplicate id on shard 1) undoes nothing else.
        Properties autosave = new Properties();
        autosave.putAll(props);
        autosave.setProperty("autosave", "always");
        try (Connection c = DriverManager.getConnection(url, autosave)) {
            c.setAutoCommit(false);
            update(c, k0, 14, null);
            update(c, k1, 22, null);
            String state = "none";
            try {
                insert(c, k1, 1, null);
            } catch (SQLException e) {
                state = e.getSQLState();
            }
            update(c, k0, 15, null);
            c.commit();
            report("autosave recovers from an error and commits across shards", state.equals("23505") && balance(c, k0) == 15 && balance(c, k1) == 22, "state " + state + ", balances " + balance(c, k0) + ", " + balance(c, k1));
            c.commit();
        }
        // executeBatch in autocommit: one pipeline, one implicit transaction on a server; across shards all or
        // nothing too. The second batch fails on shard 1 (division by zero): its update on shard 0 does not stay.
        try (Connection c = DriverManager.getConnection(url, props)) {
            try (PreparedStatement p = c.prepareStatement("UPDATE accounts SET balance = ? WHERE id = ?")) {
                p.setInt(1, 16); p.setLong(2, k0); p.addBatch();
                p.setInt(1, 23); p.setLong(2, k1); p.addBatch();
                p.executeBatch();
            }
            boolean both = balance(c, k0) == 16 && balance(c, k1) == 23;
            String state = "none";
            try (PreparedStatement p = c.prepareStatement("UPDATE accounts SET balance = 100 / ? WHERE id = ?")) {
                p.setInt(1, 1); p.setLong(2, k0); p.addBatch();
                p.setInt(1, 0); p.setLong(2, k1); p.addBatch();
                p.executeBatch();
            } catch (SQLException e) {
                state = e.getSQLState();
            }
            boolean none = balance(c, k0) == 16 && balance(c, k1) == 23;
            report("an autocommit batch across shards is all or nothing", both && none && state.equals("22012"), "first batch " + both + ", the failed one left nothing " + none + ", state " + state);
        }
        // reWriteBatchedInserts: 100 rows become multi-row INSERTs of 64, 32 and 4 rows, each on both shards, in
        // one pipeline. Then the same with a duplicate id last: nothing of that batch stays.
        Properties rewrite = new Properties();
        rewrite.putAll(props);
        rewrite.setProperty("reWriteBatchedInserts", "true");
        try (Connection c = DriverManager.getConnection(url, rewrite)) {
            Long[] ids = new Long[100];
            for (int i = 0; i < 100; i++) ids[i] = 5_000_000L + i;
            long stored = -1, after = -1;
            String state = "none";
            try (PreparedStatement p = c.prepareStatement("INSERT INTO accounts (id, balance) VALUES (?, ?)")) {
                for (long id : ids) { p.setLong(1, id); p.setInt(2, 1); p.addBatch(); }
                p.executeBatch();
                stored = countOf(c, ids);
                for (int i = 0; i < 100; i++) { p.setLong(1, 6_000_000L + i); p.setInt(2, 1); p.addBatch(); }
                p.setLong(1, ids[0]); p.setInt(2, 1); p.addBatch();
                p.executeBatch();
            } catch (SQLException e) {
                state = e.getSQLState();
            }
            Long[] failed = new Long[100];
            for (int i = 0; i < 100; i++) failed[i] = 6_000_000L + i;
            after = countOf(c, failed);
            try (PreparedStatement d = c.prepareStatement("DELETE FROM accounts WHERE id = ANY(?)")) {
                d.setArray(1, c.createArrayOf("bigint", ids));
                d.executeUpdate();
            }
            report("a rewritten batch across shards is all or nothing", stored == 100 && after == 0 && state.equals("23505"), stored + " rows stored, " + after + " of the failed batch, state " + state);
        }
    }

    static void insert(Connection c, long id, int balance, Integer code) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("INSERT INTO accounts (id, balance, code) VALUES (?, ?, ?)")) {
            p.setLong(1, id);
            p.setInt(2, balance);
            if (code == null) p.setNull(3, java.sql.Types.INTEGER);
            else p.setInt(3, code);
            p.executeUpdate();
        }
    }

    static void update(Connection c, long id, int balance, Integer code) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("UPDATE accounts SET balance = ?, code = ? WHERE id = ?")) {
            p.setInt(1, balance);
            if (code == null) p.setNull(2, java.sql.Types.INTEGER);
            else p.setInt(2, code);
            p.setLong(3, id);
            p.executeUpdate();
        }
    }

    /** How many of these ids have a row (a read of every shard). */
    static long countOf(Connection c, Long[] ids) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("SELECT count(*) FROM accounts WHERE id = ANY(?)")) {
            p.setArray(1, c.createArrayOf("bigint", ids));
            try (ResultSet rs = p.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /** The row's balance, -1 when there is none. */
    static int balance(Connection c, long id) throws SQLException {
        try (PreparedStatement p = c.prepareStatement("SELECT balance FROM accounts WHERE id = ?")) {
            p.setLong(1, id);
            try (ResultSet rs = p.executeQuery()) {
                return rs.next() ? rs.getInt(1) : -1;
            }
        }
    }

    static void report(String check, boolean ok, String detail) {
        System.out.println("{\"check\": \"" + check + "\", \"ok\": " + ok + ", \"detail\": \"" + detail.replace("\\", "\\\\").replace("\"", "'") + "\"}");
    }
}
