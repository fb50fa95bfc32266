# A fake DBI for running OpenDMARC's opendmarc-import without MySQL
# (internal/history/perl_test.go). It understands exactly the statements the
# script prepares, keeps the tables of db/schema.mysql in memory, enforces
# what MySQL in strict mode would (NOT NULL, integer ranges, unique keys),
# and on disconnect writes every table as JSON to $ENV{FAKEDBI_DUMP}.
package DBI;

use strict;
use warnings;
use JSON::PP ();

our $VERSION = '1.643';
our $errstr  = '';

# column => [kind, min, max]; kind is 'int' or 'str' (max is a length).
# Every column of the schema is NOT NULL; defaults are listed apart.
my %schema = (
	domains   => { name => ['str', 0, 255] },
	reporters => { name => ['str', 0, 255] },
	ipaddr    => { addr => ['str', 0, 64] },
	selectors => { domain => ['int', -2**31, 2**31 - 1], name => ['str', 0, 255] },
	requests  => {
		domain  => ['int', -2**31, 2**31 - 1],
		repuri  => ['str', 0, 255],
		adkim   => ['int', -128, 127],
		aspf    => ['int', -128, 127],
		policy  => ['int', -128, 127],
		spolicy => ['int', -128, 127],
		pct     => ['int', -128, 127],
		locked  => ['int', -128, 127],
	},
	messages => {
		date          => ['int', 0, 2**31 - 1],
		jobid         => ['str', 0, 128],
		reporter      => ['int', 0, 2**32 - 1],
		policy        => ['int', 0, 255],
		disp          => ['int', 0, 255],
		ip            => ['int', 0, 2**32 - 1],
		env_domain    => ['int', 0, 2**32 - 1],
		from_domain   => ['int', 0, 2**32 - 1],
		policy_domain => ['int', 0, 2**32 - 1],
		spf           => ['int', -128, 127],
		align_dkim    => ['int', 0, 255],
		align_spf     => ['int', 0, 255],
		sigcount      => ['int', 0, 255],
		arc           => ['int', 0, 255],
		arc_policy    => ['int', 0, 255],
	},
	signatures => {
		message  => ['int', 0, 2**32 - 1],
		domain   => ['int', 0, 2**32 - 1],
		selector => ['int', 0, 2**32 - 1],
		pass     => ['int', 0, 255],
		error    => ['int', 0, 255],
	},
	arcauthresults => {
		message         => ['int', 0, 2**32 - 1],
		instance        => ['int', 0, 2**32 - 1],
		arc_client_addr => ['str', 0, 64],
	},
	arcseals => {
		message  => ['int', 0, 2**32 - 1],
		domain   => ['int', 0, 2**32 - 1],
		selector => ['int', 0, 2**32 - 1],
		instance => ['int', 0, 2**32 - 1],
	},
);
my %defaults = (
	requests       => { repuri => '', adkim => 0, aspf => 0, policy => 0, spolicy => 0, pct => 0, locked => 0 },
	arcauthresults => { arc_client_addr => '' },
);
my %unique = (
	domains        => [['name']],
	reporters      => [['name']],
	ipaddr         => [['addr']],
	selectors      => [['name', 'domain']],
	requests       => [['domain']],
	messages       => [['reporter', 'date', 'jobid']],
	arcauthresults => [['message', 'instance']],
	arcseals       => [['message', 'domain', 'selector', 'instance']],
);

my %tables  = map { $_ => [] } keys %schema;
my $last_id = 0;
my @log;

sub connect
{
	my ($class, $dsn, $user, $pass, $attr) = @_;
	return bless { dsn => $dsn }, 'DBI::db';
}

sub fail
{
	$errstr = shift;
	push(@log, "ERROR: $errstr");
	return undef;
}

# check_value returns the value to store for $table.$col, or dies with the
# error MySQL would give.
sub check_value
{
	my ($table, $col, $v) = @_;
	my $spec = $schema{$table}{$col} or die "Unknown column '$col' in '$table'\n";
	die "Column '$col' cannot be null\n" if !defined($v);
	my ($kind, $min, $max) = @$spec;
	if ($kind eq 'int')
	{
		die "Incorrect integer value: '$v' for column '$col'\n" if $v !~ /^-?\d+$/;
		die "Out of range value for column '$col': $v\n" if $v < $min || $v > $max;
		return $v + 0;
	}
	die "Data too long for column '$col'\n" if length($v) > $max;
	return "$v";
}

sub insert
{
	my ($table, $row) = @_;
	die "Table '$table' doesn't exist\n" if !exists($schema{$table});
	my %r = (%{ $defaults{$table} || {} });
	$r{$_} = check_value($table, $_, $row->{$_}) for keys %$row;
	for my $col (keys %{ $schema{$table} })
	{
		die "Field '$col' doesn't have a default value\n" if !exists($r{$col});
	}
	for my $key (@{ $unique{$table} || [] })
	{
		for my $old (@{ $tables{$table} })
		{
			my $same = 1;
			for my $c (@$key)
			{
				$same = 0 if "$old->{$c}" ne "$r{$c}";
			}
			die "Duplicate entry for key '" . join(',', @$key) . "' in $table\n" if $same;
		}
	}
	$r{id} = scalar(@{ $tables{$table} }) + 1;
	push(@{ $tables{$table} }, \%r);
	$last_id = $r{id};
}

package DBI::db;

sub prepare
{
	my ($dbh, $sql) = @_;
	return bless { sql => $sql, rows => [] }, 'DBI::st';
}

sub errstr { return $DBI::errstr }

sub disconnect
{
	my $path = $ENV{FAKEDBI_DUMP} or return 1;
	open(my $fh, '>', $path) or die "fake DBI: $path: $!\n";
	print $fh JSON::PP->new->canonical->encode({ tables => \%tables, log => \@log });
	close($fh);
	return 1;
}

package DBI::st;

sub errstr { return $DBI::errstr }
sub finish { return 1 }

sub fetchrow_arrayref
{
	my $sth = shift;
	return shift(@{ $sth->{rows} });
}

sub execute
{
	my ($sth, @args) = @_;
	my $sql = $sth->{sql};
	$sql =~ s/\s+/ /g;
	$sql =~ s/^ | $//g;
	$sth->{rows} = [];
	push(@log, $sql . ' <- ' . join(', ', map { defined($_) ? "'$_'" : 'NULL' } @args));
	my $ok = eval { run($sth, $sql, @args); 1 };
	return DBI::fail($@ =~ s/\n$//r) if !$ok;
	return 1;
}

sub run
{
	my ($sth, $sql, @args) = @_;
	if ($sql eq 'SELECT LAST_INSERT_ID()')
	{
		push(@{ $sth->{rows} }, [$last_id]);
	}
	elsif ($sql =~ /^SELECT (\w+) FROM (\w+) WHERE (\w+) = \?(?: AND (\w+) = \?)?$/)
	{
		my ($col, $table, @where) = ($1, $2, grep { defined } ($3, $4));
		die "Table '$table' doesn't exist\n" if !exists($tables{$table});
		die "wrong number of bind values\n" if @args != @where;
		ROW: for my $r (@{ $tables{$table} })
		{
			for my $i (0 .. $#where)
			{
				next ROW if !defined($args[$i]) || "$r->{$where[$i]}" ne "$args[$i]";
			}
			push(@{ $sth->{rows} }, [$r->{$col}]);
		}
	}
	elsif ($sql =~ /^INSERT INTO (\w+) ?\( ?([^)]*?) ?\) VALUES ?\( ?(.*?) ?\)$/)
	{
		my ($table, @cols) = ($1, split(/ ?, ?/, $2));
		my @vals = split(/ ?, ?/, $3);
		die "column/value count mismatch\n" if @cols != @vals;
		my %row;
		for my $i (0 .. $#cols)
		{
			die "too few bind values\n" if !@args;
			my $v = shift(@args);
			if ($vals[$i] eq 'FROM_UNIXTIME(?)')
			{
				$v = (defined($v) && $v =~ /^\d+$/) ? $v : undef;
			}
			elsif ($vals[$i] ne '?')
			{
				die "unsupported value $vals[$i]\n";
			}
			$row{ $cols[$i] } = $v;
		}
		die "too many bind values\n" if @args;
		DBI::insert($table, \%row);
	}
	elsif ($sql =~ /^UPDATE (\w+) SET (.*) WHERE id = \?$/)
	{
		my ($table, @sets) = ($1, split(/ ?, ?/, $2));
		my $id = pop(@args);
		my %set;
		for my $s (@sets)
		{
			if ($s =~ /^(\w+) = \?$/)
			{
				die "too few bind values\n" if !@args;
				$set{$1} = DBI::check_value($table, $1, shift(@args));
			}
			elsif ($s =~ /^(\w+) = ''$/)
			{
				$set{$1} = DBI::check_value($table, $1, '');
			}
			else
			{
				die "unsupported SET $s\n";
			}
		}
		die "too many bind values\n" if @args;
		for my $r (@{ $tables{$table} })
		{
			next if "$r->{id}" ne "$id";
			$r->{$_} = $set{$_} for keys %set;
		}
	}
	else
	{
		die "fake DBI: unsupported statement: $sql\n";
	}
}

1;
