# Stand-in for DBD::mysql, which opendmarc-import requires: the fake DBI
# beside it needs no driver.
package DBD::mysql;
our $VERSION = '0';
1;
