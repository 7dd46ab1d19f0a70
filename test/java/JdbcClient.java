// pgjdbc (Debian's libpostgresql-jdbc-java) through the proxy. Run as a single-file program:
//   java -cp /usr/share/java/postgresql.jar JdbcClient.java JDBC_URL USER PASSWORD
// Prints one JSON line per check: {"check": …, "ok": …, "detail": …}. The checks are what breaks JDBC behind
// transaction poolers: its server-side statements (S_1, S_2, … per connection) after prepareThreshold uses,
// batches sent as one pipeline, settings per connection, and a connection that goes on after an error.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

public class JdbcClient {
    static final int THREADS = 24;
    static final int ROUNDS = 30;

    static String url;
    static Properties props = new Properties();

    public static void main(String[] args) throws Exception {
        url = args[0];
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        // Server-side prepared statements from the first execution (the default waits for 5).
        props.setProperty("prepareThreshold", "1");
        props.setProperty("connectTimeout", "10");
        props.setProperty("socketTimeout", "60");
        try (Connection c = connect(); Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS jdbc_items");
            s.execute("CREATE TABLE jdbc_items (id int PRIMARY KEY, owner int NOT NULL)");
        }
        preparedAcrossPooledConnections();
        serverSideNames();
        batchInsert();
        fetchInBatches();
        errorThenGoOn();
    }

    static Connection connect() throws SQLException {
        return DriverManager.getConnection(url, props);
    }

    static void report(String check, boolean ok, String detail) {
        System.out.println("{\"check\": \"" + check + "\", \"ok\": " + ok + ", \"detail\": \"" + detail.replace("\\", "\\\\").replace("\"", "'") + "\"}");
    }

    /**
     * Many JDBC connections, each with its own S_n statements, over fewer server connections: every answer right,
     * each client's application_name its own, transactions committed or rolled back as asked.
     */
    static void preparedAcrossPooledConnections() throws Exception {
        AtomicInteger wrong = new AtomicInteger();
        AtomicInteger errors = new AtomicInteger();
        List<String> firstErrors = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            final int id = t;
            futures.add(pool.submit(() -> {
                try (Connection c = connect()) {
                    try (Statement s = c.createStatement()) {
                        s.execute("SET application_name = 'jdbc-" + id + "'");
                    }
                    c.setAutoCommit(false);
                    // One statement text shared by every client, one of this client's own: both become S_n.
                    PreparedStatement shared = c.prepareStatement("SELECT ?::int * 2 + ?::int AS v, current_setting('application_name') AS app");
                    PreparedStatement own = c.prepareStatement("SELECT ?::int + " + (id * 1000) + " AS v");
                    PreparedStatement insert = c.prepareStatement("INSERT INTO jdbc_items (id, owner) VALUES (?, ?)");
                    for (int r = 0; r < ROUNDS; r++) {
                        shared.setInt(1, r);
                        shared.setInt(2, id);
                        try (ResultSet rs = shared.executeQuery()) {
                            rs.next();
                            if (rs.getInt(1) != r * 2 + id || !rs.getString(2).equals("jdbc-" + id)) wrong.incrementAndGet();
                        }
                        own.setInt(1, r);
                        try (ResultSet rs = own.executeQuery()) {
                            rs.next();
                            if (rs.getInt(1) != r + id * 1000) wrong.incrementAndGet();
                        }
                        insert.setInt(1, id * 1000 + r);
                        insert.setInt(2, id);
                        insert.executeUpdate();
                        // Odd rounds roll back: their rows must not exist afterwards.
                        if (r % 2 == 0) c.commit();
                        else c.rollback();
                    }
                } catch (SQLException e) {
                    errors.incrementAndGet();
                    synchronized (firstErrors) {
                        if (firstErrors.size() < 3) firstErrors.add(e.getSQLState() + " " + e.getMessage());
                    }
                }
                return null;
            }));
        }
        for (Future<?> f : futures) f.get(120, TimeUnit.SECONDS);
        pool.shutdown();
        int rows = -1;
        int badRows = -1;
        try (Connection c = connect(); Statement s = c.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT count(*), count(*) FILTER (WHERE (id % 1000) % 2 = 1) FROM jdbc_items")) {
                rs.next();
                rows = rs.getInt(1);
                badRows = rs.getInt(2);
            }
        }
        int expectedRows = THREADS * ((ROUNDS + 1) / 2);
        report("prepared statements across pooled connections",
            wrong.get() == 0 && errors.get() == 0 && rows == expectedRows && badRows == 0,
            THREADS + " clients x " + ROUNDS + " transactions: " + wrong.get() + " wrong answers, " + errors.get() + " errors " + firstErrors
                + ", " + rows + " rows committed (expected " + expectedRows + "), " + badRows + " from rolled-back transactions");
    }

    /** The statements really are server-side, under the proxy's names: JDBC's S_n never reach a server. */
    static void serverSideNames() throws SQLException {
        try (Connection c = connect()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT ?::int AS v")) {
                for (int i = 0; i < 2; i++) {
                    ps.setInt(1, i);
                    ps.executeQuery().close();
                }
            }
            try (Statement s = c.createStatement();
                 ResultSet rs = s.executeQuery("SELECT count(*) FILTER (WHERE name LIKE 'pgshard%'), count(*) FILTER (WHERE name LIKE 'S\\_%') FROM pg_prepared_statements")) {
                rs.next();
                int proxyNamed = rs.getInt(1);
                int clientNamed = rs.getInt(2);
                c.commit();
                report("server-side statements under the proxy's names", proxyNamed >= 1 && clientNamed == 0,
                    proxyNamed + " statements named by pgshard on the server connection, " + clientNamed + " under JDBC's own names");
            }
        }
    }

    /** executeBatch sends every Bind/Execute of the batch before one Sync. */
    static void batchInsert() throws SQLException {
        try (Connection c = connect()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_items (id, owner) VALUES (?, ?)")) {
                for (int i = 0; i < 500; i++) {
                    ps.setInt(1, 1_000_000 + i);
                    ps.setInt(2, -1);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                c.commit();
                int total = 0;
                for (int n : counts) total += n;
                try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM jdbc_items WHERE owner = -1")) {
                    rs.next();
                    int stored = rs.getInt(1);
                    c.commit();
                    report("batch insert", total == 500 && stored == 500, "500 rows batched: " + total + " reported, " + stored + " stored");
                }
            }
        }
    }

    /** setFetchSize in a transaction: Execute with a row limit, PortalSuspended, Execute again on the same portal. */
    static void fetchInBatches() throws SQLException {
        try (Connection c = connect()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT g FROM generate_series(1, ?) g")) {
                ps.setFetchSize(100);
                ps.setInt(1, 5000);
                long rows = 0;
                long sum = 0;
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        rows++;
                        sum += rs.getInt(1);
                    }
                }
                c.commit();
                report("fetch in batches", rows == 5000 && sum == 5000L * 5001 / 2, rows + " rows in batches of 100, sum " + sum);
            }
        }
    }

    /** A failed statement aborts the transaction; after rollback the same connection and statements work. */
    static void errorThenGoOn() throws SQLException {
        try (Connection c = connect()) {
            c.setAutoCommit(false);
            PreparedStatement div = c.prepareStatement("SELECT 10 / ?::int AS v");
            String error = "none";
            div.setInt(1, 0);
            try {
                div.executeQuery();
            } catch (SQLException e) {
                error = e.getSQLState();
            }
            c.rollback();
            div.setInt(1, 5);
            int v;
            try (ResultSet rs = div.executeQuery()) {
                rs.next();
                v = rs.getInt(1);
            }
            c.commit();
            report("error then the connection goes on", error.equals("22012") && v == 2, "division by zero gave " + error + ", then 10 / 5 = " + v);
        }
    }
}
